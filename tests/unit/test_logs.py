"""Log formats: JSON lines carry trace_id, span_id and task_id; text stays plain."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hivewire.core.logs import make_handler
from hivewire.core.tracing import current_task_id
from hivewire_services.common.config import CommonSettings, load_settings


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("hivewire.test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_json_lines_carry_trace_span_and_task() -> None:
    out = io.StringIO()
    logger = _logger(make_handler("json", out))
    tracer = TracerProvider().get_tracer("test")
    token = current_task_id.set("ab" * 16)
    try:
        with tracer.start_as_current_span("work") as span:
            logger.info("applied %d results", 3, extra={"capability": "echo"})
    finally:
        current_task_id.reset(token)
    logger.warning("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    ctx = span.get_span_context()
    assert first["message"] == "applied 3 results"
    assert first["level"] == "INFO"
    assert first["logger"] == "hivewire.test.logs"
    assert first["trace_id"] == format(ctx.trace_id, "032x")
    assert first["span_id"] == format(ctx.span_id, "016x")
    assert first["task_id"] == "ab" * 16
    assert first["capability"] == "echo"
    assert first["time"].endswith("+00:00")
    assert "trace_id" not in second and "task_id" not in second


def test_json_lines_carry_exceptions() -> None:
    out = io.StringIO()
    logger = _logger(make_handler("json", out))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    record = json.loads(out.getvalue())
    assert "RuntimeError: boom" in record["exception"]


def test_text_format_is_one_plain_line() -> None:
    out = io.StringIO()
    _logger(make_handler("text", out)).info("hello %s", "world")
    line = out.getvalue().strip()
    assert line.endswith("INFO hivewire.test.logs: hello world")
    with pytest.raises(ValueError):
        json.loads(line)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="HIVEWIRE_LOG_FORMAT"):
        make_handler("xml")


def test_format_is_read_from_the_environment() -> None:
    assert load_settings(CommonSettings, {"HIVEWIRE_LOG_FORMAT": "json"}).log_format == "json"
    assert load_settings(CommonSettings, {}).log_format == "text"
