"""Logs: one JSON object per line (python-json-logger), or plain lines for a developer
(`LOG_FORMAT=text`), each carrying what it is about.

`bind` adds fields to every line logged by the current task and the tasks it starts (a
`ContextVar`): the HTTP request id, the Slack team, user and channel of a request, the lead, the
outbox row being delivered. Each aiohttp request and each outbox delivery runs in a task of its
own, so the fields never leak from one to the next.

Nothing secret or personal is logged, at any level: tokens and secrets never reach a log call,
Bolt's signature failures lose their body (`WithoutBody`) and so do its answers to Slack
(`WithoutResponseBodies`: a `/lead` card carries the lead's email), slack_sdk's DEBUG lines
about each Web API call lose their parameters and response bodies (`WithoutSlackBodies`), which
carry the leads' names and emails, and SQLAlchemy's lose their rows (`WithoutRows`; the engines
hide statement parameters). tests/e2e/test_logs.py checks all of it at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("request_id", "team", "user", "channel", "lead_id", "outbox_id", "crm_outbox_id")
_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("handoff_log_fields", default={})  # noqa: B039
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def bind(**fields: Any) -> None:
    """Add fields (None: left out) to every line the current task logs from now on."""
    given = {name: value for name, value in fields.items() if value is not None}
    if given:
        _CONTEXT.set({**_CONTEXT.get(), **given})


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """`bind` for a block only: a task that does one thing after another (an outbox lane)."""
    token = _CONTEXT.set(_CONTEXT.get())
    bind(**fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bound() -> dict[str, Any]:
    """The fields bound in the current task."""
    return dict(_CONTEXT.get())


class WithContext(logging.Filter):
    """Copies the bound fields onto each record (as attributes the formatters read)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class WithoutBody(logging.Filter):
    """Bolt logs a request whose signature fails with its whole body: the payload of a pressed
    button carries the message, and so the lead's data. Keep the line, drop the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        if line.startswith("Invalid request signature") and ", body: " in line:
            record.msg, record.args = line.split(", body: ", 1)[0] + ", body not logged)", ()
        return True


class WithoutSlackBodies(logging.Filter):
    """slack_sdk logs every Web API call at DEBUG with its parameters and the response body:
    the messages Handoff posts, with the leads' names and emails. Keep the method and the
    status, drop the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        if line.startswith("Sending a request - url: "):
            record.msg, record.args = line.split(", params: ", 1)[0] + " (body not logged)", ()
        elif line.startswith("Received the following response - "):
            record.msg, record.args = line.split(", headers: ", 1)[0] + " (body not logged)", ()
        return True


class WithoutResponseBodies(logging.Filter):
    """Bolt logs its answer to each Slack request at DEBUG with the answer's body: a `/lead`
    look-up's card, a modal's errors, an ephemeral refusal, with the lead's name, email, phone
    and note. Keep the status, drop the body (also of a middleware's answer, and of a request
    a middleware left unanswered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        if line.startswith("Responding with status: ") and " body: " in line:
            record.msg, record.args = line.split(" body: ", 1)[0] + " (body not logged)", ()
        elif line.startswith("Responding with listener middleware's response - "):
            record.msg, record.args = line.split(", body: ", 1)[0] + " (body not logged)", ()
        elif line.startswith("A global middleware (") and "for the request (" in line:
            record.msg, record.args = (
                line.split(" for the request (", 1)[0] + " (body not logged)",
                (),
            )
        return True


class WithoutRows(logging.Filter):
    """SQLAlchemy logs each row it reads at DEBUG: the leads themselves. Drop those lines (the
    engines hide statement parameters: `hide_parameters`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(("Row ", "Col ")))


# The loggers those lines go to (a logger's filters see the records logged on it, no others).
_PROTECTED = {
    "slack_sdk.web.async_base_client": WithoutSlackBodies,
    "slack_sdk.web.base_client": WithoutSlackBodies,
    "slack_bolt.RequestVerification": WithoutBody,
    "slack_bolt.AsyncApp": WithoutResponseBodies,  # its listener runner's logger
    "slack_bolt.App": WithoutResponseBodies,
    "sqlalchemy.engine.Engine": WithoutRows,
}


def protect() -> None:
    """Install the filters above on their loggers (once; every Handoff calls it)."""
    for name, kind in _PROTECTED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


class TurnWriter(logging.StreamHandler):
    """A stream handler that writes the lines logged in one turn of the running event loop
    together, at the start of the next turn: one write to the pipe for a burst's ten or
    twenty intake lines instead of one each (py-spy put a line's write and flush at a few
    percent of a lead's CPU in the intake burst, issue 15). Outside an event loop (a thread,
    the CLI), each line is written at once, as by a plain `StreamHandler`. A line waits one
    loop turn at most; `flush` and exit (`logging.shutdown`) write whatever waits."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is due on

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self._waiting.append(line)
        if loop is None:
            self.flush()
        elif self._loop is None:
            self._loop = loop
            loop.call_soon(self.flush)
        elif self._loop is not loop:  # another thread's loop: that one flushes, not this
            self.flush()

    def flush(self) -> None:
        self.acquire()  # a thread's line may come in meanwhile
        try:
            self._loop = None
            if not self._waiting:
                return
            text, self._waiting = "".join(self._waiting), []
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "log lines lost"}))
        finally:
            self.release()


class TextWithContext(logging.Formatter):
    """A readable line, the bound fields after it as `key=value` (`request_id=…`)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        bound = [f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name)]
        return f"{line} [{' '.join(bound)}]" if bound else line


def _utc(chosen: logging.Formatter) -> logging.Formatter:
    """Times as ISO 8601 in UTC, to the millisecond (`2026-12-05T19:28:24.084Z`), whatever the
    host's time zone: lines from replicas in different zones sort and compare as they are."""
    chosen.converter = time.gmtime
    chosen.default_time_format = "%Y-%m-%dT%H:%M:%S"
    chosen.default_msec_format = "%s.%03dZ"
    return chosen


def formatter(kind: str) -> logging.Formatter:
    """`json` (the default): one object per line with `time`, `level`, `logger`, `message` and
    the bound fields; `text`: a readable line, the bound fields at its end."""
    if kind == "text":
        return _utc(TextWithContext(TEXT))
    return _utc(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )


def configure(level: int, kind: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """Send every log line to `stream` (stderr) in `kind`'s format, at `level` and above."""
    if kind not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {kind!r}")
    handler = TurnWriter(stream or sys.stderr)
    handler.addFilter(WithContext())
    handler.setFormatter(formatter(kind))
    protect()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries' routine lines (a migration step, each scheduled run) only past INFO.
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    handler.addFilter(_not_bolts_token_notice)
    return handler


def _not_bolts_token_notice(record: logging.LogRecord) -> bool:
    """Bolt reads SLACK_BOT_TOKEN itself and warns that the client Handoff gives it wins: true,
    and by design (bot/app.py), so it is not said on every start."""
    return not (
        record.name.startswith("slack_bolt")
        and str(record.msg).startswith("As you gave `client` as well")
    )
