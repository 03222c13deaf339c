"""An in-process OTLP/gRPC trace collector (the opentelemetry-proto TraceService) on port 0."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.waiting import eventually

KIND = trace_pb2.Span.SpanKind


@dataclass(frozen=True)
class SpanRecord:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)

    def attr(self, key: str) -> Any:
        return self.attributes.get(key)


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every exported span; `wait_for` polls until a condition holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[SpanRecord] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.stop(1).wait(5)

    def Export(  # noqa: N802 - the RPC's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        records = []
        for rs in request.resource_spans:
            service = next(
                (_value(a.value) for a in rs.resource.attributes if a.key == "service.name"), ""
            )
            for ss in rs.scope_spans:
                for span in ss.spans:
                    records.append(
                        SpanRecord(
                            service=service,
                            name=span.name,
                            kind=KIND.Name(span.kind).removeprefix("SPAN_KIND_"),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=[(ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links],
                        )
                    )
        with self._lock:
            self._spans.extend(records)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[SpanRecord]:
        with self._lock:
            return list(self._spans)

    async def wait_for(
        self, check: Callable[[list[SpanRecord]], bool], within: float = 60.0
    ) -> list[SpanRecord]:
        """Every span received, once `check` holds for them."""

        def checked() -> list[SpanRecord]:
            spans = self.spans()
            assert check(spans), f"{len(spans)} spans: {sorted({s.name for s in spans})}"
            return spans

        return await eventually(checked, within=within, interval=0.2, message="the spans")
