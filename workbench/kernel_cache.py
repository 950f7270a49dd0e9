"""numba's on-disk cache, kept honest across modules.

numba's cache (``cache=True``) watches only the source file a function is defined in, and a
cached function carries its callees compiled in (inlined, often). After an edit to a module a
kernel calls, the kernel would silently run the old callee. `drop_stale` forgets the cached
compilations of a module's kernels that are older than any module they call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from types import ModuleType
from typing import Any


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
