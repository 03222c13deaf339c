"""Logging setup shared by every process: text or JSON lines (HIVEWIRE_LOG_FORMAT)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import trace

from hivewire.core.tracing import current_task_id

FORMATS = ("text", "json")

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id/span_id/task_id when
    known, exception text, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = format(ctx.trace_id, "032x")
            out["span_id"] = format(ctx.span_id, "016x")
        task_id = current_task_id.get()
        if task_id:
            out["task_id"] = task_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


def make_handler(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stderr handler in the given format ('text' or 'json')."""
    fmt = log_format.strip().lower() or "text"
    if fmt not in FORMATS:
        raise ValueError(f"HIVEWIRE_LOG_FORMAT={log_format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    return handler


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Logs to stderr: text (time, level, logger, message) or JSON lines."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(log_format)]
    root.setLevel(level.upper())
