"""Structured logs: JSON lines for machines, readable lines for a terminal, a rotated file.

`setup_logging(settings)` configures the root logger once per process:

- on stderr, JSON lines when `WORKBENCH_LOG_FORMAT=json`, or when it is `auto` (the default)
  and stderr is not a terminal (systemd's journal, a container's log driver, a pipe); else
  one readable line per record with its context fields after the message;
- with `WORKBENCH_LOG_FILE`, JSON lines in that file too, rotated by size
  (`log_max_bytes`, `log_backups` files kept).

Every record of the live path carries `exchange`, and `strategy_id` and `client_order_id`
where the record is about one: the engine's events are logged with them as fields
(`workbench.ops.eventlog`), and `LiveContext` fills them into the engine's own records by
recognising the ids of the strategies it knows and the workbench's client order ids in the
message. Keys never appear: the security issue's redaction (`workbench.auth.redact`) rewrites
every record's message and traceback when it is created, and each formatted line is redacted
again here (it covers the context fields too).

Writing is off the caller's thread: the root logger gets a `QueueHandler`, and a
`QueueListener` thread formats and writes each record. A slow or blocked stderr (a full
pipe, a stalled journal) or a slow disk never holds up the trading loop. That thread still
shares the interpreter (and two cores) with the loop, so it does each record's work once: a
record going to JSON on stderr and to the file is rendered once for both, and the file's
size check reuses that line (the standard library's `RotatingFileHandler` renders every
record a second time, and looks the file up on disk twice, to decide on rotating).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
from pathlib import Path
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from workbench.auth import redact

CONTEXT = ("exchange", "strategy_id", "client_order_id", "symbol")
_ORDER_ID = re.compile(r"\bwb-[0-9a-f]{28}\b")
_MARK = "_workbench_ops"  # our handlers carry it: a second setup replaces them
_listener: logging.handlers.QueueListener | None = None
_STANDARD = {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName"}


class LiveContext(logging.Filter):
    """Adds the live path's context to records that lack it (never drops a record)."""

    def __init__(self) -> None:
        super().__init__()
        self.exchange: str | None = None
        self._strategies: tuple[str, ...] = ()
        self._known: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def know_strategy(self, strategy_id: str) -> None:
        """Recognise this strategy id in messages from now on (longest ids match first)."""
        if strategy_id in self._known:  # every event of a known one: no lock taken
            return
        with self._lock:
            if strategy_id not in self._known:
                self._known = self._known | {strategy_id}
                self._strategies = tuple(sorted(self._known, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "exchange", None) is None and self.exchange is not None:
            record.exchange = self.exchange
        if not record.name.startswith("workbench"):
            return True
        sid = getattr(record, "strategy_id", None)
        cid = getattr(record, "client_order_id", None)
        if sid is not None and cid is not None:
            return True  # an engine event's record: its ids are fields already
        message = record.getMessage()
        if sid is None:
            found = next((s for s in self._strategies if s in message), None)
            if found is not None:
                record.strategy_id = found
        if cid is None:
            match = _ORDER_ID.search(message)
            if match:
                record.client_order_id = match.group(0)
        return True


#: The process's live context (one engine exchange per process in production).
live_context = LiveContext()


class RedactedJson(JsonFormatter):
    """One JSON object per record: time, level, logger, message, context and extra fields.

    The line of the record formatted last is kept: the handlers sharing this formatter (the
    JSON console and the file, called in turn by the writer thread) render a record once."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
        self._last: tuple[logging.LogRecord | None, str] = (None, "")

    def format(self, record: logging.LogRecord) -> str:
        last, line = self._last
        if last is not record:
            line = redact.redact(super().format(record))
            self._last = (record, line)
        return line


class RotatingFile(logging.handlers.RotatingFileHandler):
    """A size-rotated file whose size check renders nothing twice and asks the disk nothing:
    the line is the shared formatter's (rendered once), and whether the path is a regular
    file (rotating /dev/null makes no sense) is looked up when the file is opened, not twice
    per record as the standard library does."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups)

    def _open(self) -> Any:
        self._regular = not os.path.exists(self.baseFilename) or os.path.isfile(self.baseFilename)
        return super()._open()

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.stream is None:  # delay was set, or a rollover closed it
            self.stream = self._open()
        if self.maxBytes <= 0 or not self._regular:
            return False
        self.stream.seek(0, 2)  # another process may append to the same file
        return self.stream.tell() + len(self.format(record)) + 1 >= self.maxBytes


class ReadableLine(logging.Formatter):
    """`time level logger: message key=value ...` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and v is not None}
        extra.pop("exchange", None)  # one per process: noise on a terminal
        if extra:
            fields = " ".join(f"{k}={v}" for k, v in extra.items())
            head, sep, rest = line.partition("\n")  # tracebacks stay below
            line = f"{head}  [{fields}]{sep}{rest}"
        return redact.redact(line)


def wants_json(log_format: str, stream: IO[str]) -> bool:
    """Tell whether records on `stream` are written as JSON for this format setting."""
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def stop_logging() -> None:
    """Write what is queued and stop the writer thread (at exit, or before a new setup)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        for handler in _listener.handlers:
            handler.close()
        _listener = None


class _NotEvents(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "workbench.live.events"


def setup_logging(
    settings: Any,
    stream: IO[str] | None = None,
    exchange: str | None = None,
    *,
    events_on_terminal: bool = True,
) -> list[logging.Handler]:
    """Configure the root logger from the settings; give the handlers that write.

    `events_on_terminal=False` keeps the engine's event records off a readable console (the
    command prints its own line for each); JSON output and the log file keep them. Calling
    it again replaces what it installed before (tests, a second engine).
    """
    global _listener
    stream = stream if stream is not None else sys.stderr
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    stop_logging()
    if exchange is not None:
        live_context.exchange = exchange
    console = logging.StreamHandler(stream)
    json_out = wants_json(settings.log_format, stream)
    as_json = RedactedJson()  # one for the console and the file: a record renders once
    console.setFormatter(as_json if json_out else ReadableLine())
    if not json_out and not events_on_terminal:
        console.addFilter(_NotEvents())
    handlers: list[logging.Handler] = [console]
    if settings.log_file is not None:
        path = Path(settings.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        rotating = RotatingFile(path, settings.log_max_bytes, settings.log_backups)
        rotating.setFormatter(as_json)
        handlers.append(rotating)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(records)
    enqueue.addFilter(live_context)  # on the caller's thread: the ids are known there
    setattr(enqueue, _MARK, True)
    root.addHandler(enqueue)
    _listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    _listener.start()
    root.setLevel(str(settings.log_level).upper())
    # Chatty libraries stay at warnings unless asked for DEBUG.
    if root.level > logging.DEBUG:
        for name in ("apprise", "asyncio", "bokeh", "tornado.access", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return handlers


atexit.register(stop_logging)
