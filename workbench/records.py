"""`evolve`: `dataclasses.replace` for the values the live path copies on every order.

`dataclasses.replace` builds the copy through the class's `__init__`, which on a frozen
class sets each field through `object.__setattr__`: 10-20 us for an `Order` on these
machines, and an order is copied several times between its decision and its settling (its
state, its acknowledgement, its fills). Copying the instance's dict costs about 1 us. The
copy is the same: unknown fields are refused as `replace` refuses them, and `__post_init__`
runs on the copy as it would.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


@cache
def _init_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


def evolve(obj: T, **changes: Any) -> T:
    """Give a copy of a dataclass instance (frozen or not, without slots) with some fields
    changed; the same as `dataclasses.replace(obj, **changes)`."""
    cls = type(obj)
    unknown = changes.keys() - _init_fields(cls)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))} to change")
    new = object.__new__(cls)
    state = new.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    post_init = getattr(new, "__post_init__", None)
    if post_init is not None:
        post_init()
    return new
