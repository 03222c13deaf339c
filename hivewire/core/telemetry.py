"""Tracing for one process: a TracerProvider exporting OTLP/gRPC when the OTEL_* variables ask.

Export happens only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set and
`OTEL_SDK_DISABLED` / `OTEL_TRACES_EXPORTER=none` do not turn it off. Otherwise no provider is
installed and every span is the API's no-op (trace ids still propagate). Spans leave through a
BatchSpanProcessor on its own thread: a bounded queue (spans are dropped when it is full) and a
short export timeout, so a collector outage never slows or fails a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from hivewire.core import tracing

logger = logging.getLogger(__name__)

SERVICE_NAMES = {
    "gateway": "hivewire-gateway",
    "coordinator": "hivewire-coordinator",
    "registry": "hivewire-registry",
    "agent": "hivewire-agent",
}
# Used when the OTEL_* variables do not say otherwise.
DEFAULT_EXPORT_TIMEOUT_S = 2.0
DEFAULT_MAX_QUEUE = 4096
DEFAULT_SCHEDULE_DELAY_MS = 1000
# The last flush of a stopping process: spans reach a live collector in milliseconds; an
# unreachable one (retries, a slow DNS) is given up on rather than keep the process alive.
FLUSH_ON_SHUTDOWN_S = 1.0
GIVE_UP_JOIN_S = 0.5


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when the standard OTEL_* variables ask for trace export."""
    src = os.environ if env is None else env
    if src.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if src.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        src.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or src.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


@dataclass
class Telemetry:
    """The process's tracing; `shutdown()` flushes buffered spans (idempotent)."""

    provider: TracerProvider | None = None
    exporter: SpanExporter | None = None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def shutdown(self, within: float = FLUSH_ON_SHUTDOWN_S) -> None:
        """Export what is buffered and stop, for at most `within` seconds: past that the spans
        left are dropped and the exporter is closed (its retries end), so a collector that
        cannot be reached never holds up a process's exit."""
        provider, self.provider = self.provider, None
        if provider is None:
            return
        gave_up = threading.Event()
        flush = threading.Thread(
            target=_flush_and_stop, args=(provider, gave_up), name="otel-shutdown", daemon=True
        )
        flush.start()
        flush.join(within)
        if flush.is_alive():
            logger.warning("spans not exported within %.1fs (collector unreachable?)", within)
            gave_up.set()
            # Closing the exporter ends its retry (and the flush) at once.
            if self.exporter is not None:
                with contextlib.suppress(Exception):
                    self.exporter.shutdown()
            flush.join(GIVE_UP_JOIN_S)


def _flush_and_stop(provider: TracerProvider, gave_up: threading.Event) -> None:
    try:
        provider.force_flush()
        if not gave_up.is_set():  # else the exporter is closed already
            provider.shutdown()
    except Exception:
        logger.warning("flushing spans failed", exc_info=True)


_installed: Telemetry | None = None


def setup_tracing(service: str, env: Mapping[str, str] | None = None) -> Telemetry:
    """Install the process's TracerProvider (once) named `hivewire-<service>`.

    OTEL_SERVICE_NAME overrides the name; OTEL_RESOURCE_ATTRIBUTES adds attributes; the
    exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers, insecure, timeout, compression) and
    the batch processor OTEL_BSP_* (queue size, delay, batch size).
    """
    global _installed
    if _installed is not None:
        return _installed
    src = os.environ if env is None else env
    if not tracing_enabled(src):
        _installed = Telemetry()
        return _installed
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    name = src.get("OTEL_SERVICE_NAME") or SERVICE_NAMES.get(service, f"hivewire-{service}")
    resource = Resource.create({"service.name": name})
    timeout = None
    if not (src.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or src.get("OTEL_EXPORTER_OTLP_TIMEOUT")):
        timeout = DEFAULT_EXPORT_TIMEOUT_S
    exporter = OTLPSpanExporter(timeout=timeout)
    processor = BatchSpanProcessor(
        exporter,
        max_queue_size=None if src.get("OTEL_BSP_MAX_QUEUE_SIZE") else DEFAULT_MAX_QUEUE,
        schedule_delay_millis=None
        if src.get("OTEL_BSP_SCHEDULE_DELAY")
        else DEFAULT_SCHEDULE_DELAY_MS,
        export_timeout_millis=None
        if src.get("OTEL_BSP_EXPORT_TIMEOUT")
        else DEFAULT_EXPORT_TIMEOUT_S * 1000,
    )
    # Shut down by Telemetry.shutdown (bounded), not by an atexit hook that may wait 30 s.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    tracing.refresh_recording()
    _installed = Telemetry(provider, exporter)
    logger.info("tracing on: service.name=%s", name)
    return _installed


def shutdown_tracing() -> None:
    """Flush and stop the installed provider, if any (last step of a process's shutdown)."""
    if _installed is not None:
        _installed.shutdown()
