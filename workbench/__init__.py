"""Crypto trading workbench."""
