"""Layout helpers shared by the apps."""

from __future__ import annotations

from typing import Any

import panel as pn


def lazy_tabs(*tabs: tuple[str, Any], **params: Any) -> pn.Tabs:
    """Give tabs whose content is drawn the first time each tab is shown.

    The page's first render then carries only the active tab, which keeps a page with many
    charts and tables quick to open. Panel's own ``dynamic=True`` is not used: the models it
    draws later point their stylesheets at Panel's CDN, and the apps must work offline; a
    view appended to an empty column takes the server's stylesheets like any other update.
    """
    holders = [pn.Column(sizing_mode="stretch_width") for _ in tabs]
    widget = pn.Tabs(
        *((name, holder) for (name, _), holder in zip(tabs, holders, strict=True)),
        dynamic=False,
        **params,
    )

    def show(*_: Any) -> None:
        holder = holders[widget.active]
        if not holder.objects:
            holder.objects = [tabs[widget.active][1]]

    widget.param.watch(show, "active")
    show()
    return widget


def without_mathjax() -> None:
    """Leave MathJax out of this process's pages: Panel sends its 1.7 MB bundle with any
    Markdown or HTML pane in case one holds TeX, and the apps show none (the live page with
    fifty strategies parsed it before its first chart)."""
    from panel.io import resources

    resources._panel_use_mathjax = lambda _roots: False  # type: ignore[attr-defined]
