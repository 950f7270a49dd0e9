"""Indicator kinds: numba kernels (vectorized) and O(1)-state classes (incremental)."""
