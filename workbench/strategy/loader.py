"""Load a strategy spec from a JSON file, a JSON string or a dict (the only IO in the package)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.strategy.errors import Problem, SpecError
from workbench.strategy.model import Spec
from workbench.strategy.validate import parse_spec


def load_spec(source: str | Path | dict[str, Any] | Spec) -> Spec:
    """Give the validated ``Spec`` for a path, a JSON text or a dict; raise ``SpecError``."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return parse_spec(source)
    text, label = _read(source)
    duplicates: list[str] = []
    try:
        raw = json.loads(text, object_pairs_hook=lambda pairs: _no_duplicates(pairs, duplicates))
    except json.JSONDecodeError as exc:
        raise SpecError([Problem("", f"not valid JSON: {exc}")], label) from exc
    if duplicates:  # json keeps the last silently; a spec author almost never means that
        reasons = [Problem("", f"key {key!r} appears twice in one object") for key in duplicates]
        raise SpecError(reasons, label)
    return parse_spec(raw, label)


def _no_duplicates(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            duplicates.append(key)
        out[key] = value
    return out


def _read(source: str | Path) -> tuple[str, str | None]:
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return source, None
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read {path}: {exc.strerror}")], str(path)) from exc
