"""Keeping secrets out of logs, tracebacks and error messages.

Every secret the process learns (exchange keys from the environment or the key file, the
cookie secret, passphrases) is `remember`ed; `redact` replaces each one in a text by
`[redacted]`. `install` puts a `SecretFilter` on every log record the process creates (through
the record factory, so it covers every logger and handler, added before or after) and on the
hooks that print uncaught tracebacks.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "[redacted]"
MIN_LENGTH = 6  # shorter values would redact ordinary words; no real key is that short
_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def remember(*values: Any) -> None:
    """Add secrets to redact (plain strings, pydantic SecretStr, or None, which is skipped)."""
    with _lock:
        for value in values:
            if value is None:
                continue
            text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
            if len(text) >= MIN_LENGTH:
                _secrets.add(text)


def redact(text: str) -> str:
    """Give `text` with every remembered secret replaced by [redacted]."""
    if not _secrets or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class SecretFilter(logging.Filter):
    """Redacts a record's message, arguments, traceback and stack in place; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_filter = SecretFilter()


def install(secrets: Iterable[Any] = ()) -> None:
    """Remember `secrets` and redact every log record and uncaught traceback from now on."""
    global _installed
    remember(*secrets)
    with _lock:
        if _installed:
            return
        _installed = True
    make_record = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _filter.filter(record)
        return record

    logging.setLogRecordFactory(redacting_factory)
    previous_hook = sys.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        text = "".join(traceback.format_exception(kind, exc, tb))
        sys.stderr.write(redact(text))

    sys.excepthook = excepthook
    del previous_hook

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        text = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        sys.stderr.write(redact(f"Exception in thread {args.thread}:\n{text}"))

    threading.excepthook = thread_hook


def settings_secrets(settings: Any) -> list[Any]:
    """Give every secret value a Settings object holds: its SecretStr fields, the password
    of a database URL, and the tokens in the alert URLs."""
    found: list[Any] = [
        value
        for name in type(settings).model_fields
        if hasattr(value := getattr(settings, name), "get_secret_value")
    ]
    db = str(getattr(settings, "db", "") or "")
    if "://" in db:
        user = urlsplit(db).netloc.rpartition("@")[0]
        if ":" in user:
            found += [user.split(":", 1)[1], unquote(user.split(":", 1)[1])]
        found += [v for k, v in parse_qsl(urlsplit(db).query) if k == "password"]
    urls = list(getattr(settings, "alert_urls", None) or [])
    if urls:
        from workbench.ops.notify import url_secrets  # apprise: only when alerts are set

        for url in urls:
            found += url_secrets(url)
    return found
