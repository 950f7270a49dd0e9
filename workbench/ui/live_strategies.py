"""The form that adds a strategy from a spec file (one of data/strategies, or one uploaded
from the browser), with parameter widgets from the spec's `param` class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import panel as pn
import param

from workbench.auth.acting import ActingEngine
from workbench.auth.roles import Action
from workbench.errors import WorkbenchError
from workbench.strategy import SpecError, load_spec
from workbench.strategy.model import Spec
from workbench.ui.research_setup import REPO_STRATEGIES, strategy_files
from workbench.ui.shared import LiveService

MAX_SPEC_BYTES = 256 * 1024  # an uploaded spec larger than this is refused unread


class UploadRejected(WorkbenchError, ValueError):
    """An uploaded spec file that cannot be used: which file and why."""


def check_upload(name: str, data: bytes) -> Spec:
    """Give the spec in an uploaded file, or raise UploadRejected saying what is wrong (the
    size is checked before anything is read)."""
    if len(data) > MAX_SPEC_BYTES:
        raise UploadRejected(
            f"{name} is {len(data):,} bytes; a spec file may have at most {MAX_SPEC_BYTES:,}."
        )
    if not data:
        raise UploadRejected(f"{name} is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadRejected(
            f"{name} is not UTF-8 text (byte {exc.start}: {exc.reason})."
        ) from None
    try:
        return load_spec(text)
    except SpecError as exc:
        raise UploadRejected(f"{name} is not a valid spec.\n\n```\n{exc}\n```") from None


class AddStrategy(param.Parameterized):
    """Pick or upload a spec file, set its parameters, allocation and market; add it to the
    engine. An uploaded spec is checked at once (every problem shown with its JSON path) and
    kept by the engine with the strategy, so it needs no file on the server."""

    spec_file = param.Selector(default=None, objects=[], doc="spec in data/strategies")
    symbol = param.Selector(default=None, objects=[], doc="market to trade")
    allocation = param.Number(default=1.0, bounds=(0.0, None), doc="starting cash (quote)")
    params = param.Parameter(default=None, doc="the spec's param.Parameterized values")
    message = param.String(default="")

    def __init__(
        self,
        service: LiveService,
        acting: ActingEngine,
        folder: Path = REPO_STRATEGIES,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.service = service
        self.acting = acting
        self.files: dict[str, Path | Spec] = dict(strategy_files(folder))
        self.param.spec_file.objects = list(self.files)
        self.upload = pn.widgets.FileInput(accept=".json", multiple=False, width=300)
        self.upload.param.watch(self._uploaded, "value")
        coverage = service.store.candles.coverage(exchange=service.engine.exchange)
        self.param.symbol.objects = sorted(set(coverage["symbol"]))
        self.add_button = pn.widgets.Button(name="Add strategy", button_type="primary")
        self.add_button.on_click(self._add)
        self.added: list[str] = []
        if self.files:
            self.spec_file = next(iter(self.files))
        self._spec_changed()

    @param.depends("spec_file", watch=True)
    def _spec_changed(self) -> None:
        if self.spec_file is None:
            return
        spec = load_spec(self.files[self.spec_file])
        self.params = spec.param_class()()
        if spec.market.symbol in self.param.symbol.objects:
            self.symbol = spec.market.symbol

    def _uploaded(self, _event: Any = None) -> None:
        if self.upload.value is None:
            return
        name = self.upload.filename or "uploaded.json"
        try:
            spec = check_upload(name, self.upload.value)
        except UploadRejected as exc:
            self.message = f"Not added: {exc}"
            return
        key = f"{spec.name} (uploaded)"
        self.files[key] = spec
        self.param.spec_file.objects = list(self.files)
        self.spec_file = key
        self.message = f"Checked {name}: {spec.name}, ready to add."

    def values(self) -> dict[str, Any]:
        return {k: getattr(self.params, k) for k in self.params.param if k != "name"}

    async def add(self) -> str:
        """Add the chosen strategy to the running engine; give its id."""
        engine = self.service.engine
        spec = load_spec(self.files[self.spec_file])
        number = len(engine.strategies) + 1
        sid = f"{spec.name}-{str(self.symbol).replace('/', '')}-{number}"
        sid = await self.acting.add_strategy(
            spec,
            allocation=float(self.allocation),
            params=self.values(),
            symbol=self.symbol,
            strategy_id=sid,
        )
        self.added.append(sid)
        return sid

    async def _add(self, _event: Any = None) -> None:
        self.add_button.disabled = True
        try:
            sid = await self.add()
            self.message = f"Added {sid}."
        except Exception as exc:  # a bad spec or parameter: say why on the page
            self.message = f"Not added: {exc}"
        finally:
            self.add_button.disabled = False

    @param.depends("params")
    def _param_widgets(self) -> Any:
        if self.params is None:
            return pn.Column()
        return pn.Param(self.params, show_name=False, widgets={}, width=300)

    def __panel__(self) -> Any:
        return pn.Column(
            "### Add a strategy",
            pn.widgets.Select.from_param(self.param.spec_file, name="Spec", width=300),
            pn.Column("Or upload a spec file:", self.upload, margin=(0, 10)),
            pn.widgets.Select.from_param(self.param.symbol, name="Market", width=300),
            pn.widgets.FloatInput.from_param(self.param.allocation, name="Allocation", width=300),
            self._param_widgets,
            self.add_button,
            pn.pane.Markdown(self.param.message),
            width=330,
            visible=self.acting.may(Action.ADD_STRATEGY),
        )
