"""Where the workbench's numba kernels get `njit`: numba set up for a short cold start, and
its on-disk cache kept honest across modules.

Every kernel module imports ``njit`` from here, not from numba, so that both hold before the
first kernel compiles or loads from the cache:

* numba's first compilation in a process loads its NumPy support (``numba.np.arraymath``),
  which checks that a BLAS is there by importing ``scipy.linalg`` (with numpy 2.4 and scipy
  1.17 that drags in ``numpy.f2py``): about 0.4 s of a 2 s cold start, for kernels that call
  no BLAS. scipy is a dependency of the project, so the check's answer is known; the import
  is deferred to numba's own ``ensure_blas`` call when a kernel using ``np.dot`` or
  ``np.linalg`` is typed (it makes that call itself then). `defer_blas_check` does this once.
* before it loads a kernel from its on-disk cache, numba refreshes its whole compiler context
  (``Cache.load_overload`` calls ``target_context.refresh()``): it imports and installs every
  typing and lowering registry it has (random generators, cffi with pycparser, typed
  containers, datetimes, ...), about 0.2 s of CPU at the first load in a process. Running
  machine code loaded from the cache needs none of that, only numba's runtime (NRT) started;
  a compilation refreshes the context itself (``CompilerBase`` does), so what a later
  compilation needs is loaded then. `load_cached_lightly` makes the load do just that.
* numba's cache (``cache=True``) watches only the source file a function is defined in, and
  a cached function carries its callees compiled in (inlined, often). After an edit to a
  module a kernel calls, the kernel would silently run the old callee. `drop_stale` forgets
  the cached compilations of a module's kernels that are older than any module they call.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from numba import njit

__all__ = ["defer_blas_check", "drop_stale", "load_cached_lightly", "njit"]


def defer_blas_check() -> None:
    """Load numba's NumPy support without importing scipy.linalg for its BLAS check."""
    if "numba.np.arraymath" in sys.modules:
        return
    import numba.np.linalg as linalg

    check = linalg.ensure_blas
    linalg.ensure_blas = lambda: None
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        linalg.ensure_blas = check


def drop_stale(kernels: Iterable[Any], callees: Iterable[ModuleType]) -> None:
    """Forget the cached compilations of ``kernels`` older than a module in ``callees``."""
    stamps = [os.path.getmtime(m.__file__) for m in callees if m.__file__]
    if not stamps:
        return
    newest = max(stamps)
    for kernel in kernels:
        cache = getattr(kernel, "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
        stale = index and os.path.exists(index) and os.path.getmtime(index) < newest
        if cache is not None and stale:
            cache.flush()


def load_cached_lightly() -> None:
    """Load kernels from numba's cache with only its runtime started (no context refresh).

    numba's own ``Cache.load_overload`` is replaced by the same load without its first line
    (``target_context.refresh()``). Does nothing on a numba whose cache lacks the methods used.
    """
    from numba.core.caching import Cache
    from numba.core.runtime import nrt

    if getattr(Cache.load_overload, "_workbench", False):
        return
    if not all(hasattr(Cache, n) for n in ("_guard_against_spurious_io_errors", "_load_overload")):
        return

    def load_overload(self: Any, sig: Any, target_context: Any) -> Any:
        nrt.rtsys.initialize(target_context)  # what loaded machine code needs to run
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)
        return None  # the guard swallowed an IO error: compile instead, as numba does

    load_overload._workbench = True  # type: ignore[attr-defined]
    Cache.load_overload = load_overload


defer_blas_check()
load_cached_lightly()
