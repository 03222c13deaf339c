"""Domain errors, and the one place they are mapped to gRPC status codes with rich details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "hivewire.dev"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request."""

    field: str
    description: str


class HivewireError(Exception):
    """Base of domain errors: a gRPC code, an ErrorInfo reason and optional field violations."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init_subclass__(
        cls, code: grpc.StatusCode | None = None, reason: str | None = None, **kwargs: Any
    ) -> None:
        """`class X(HivewireError, code=...)` declares an error; reason defaults to code.name."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
            cls.reason = reason or code.name

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        violations: list[FieldViolation] | None = None,
        metadata: dict[str, str] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.violations = list(violations or [])
        if field is not None:
            self.violations.append(FieldViolation(field, message))
        self.metadata = dict(metadata or {})
        # Seconds the caller should wait before trying again (sent as google.rpc.RetryInfo).
        self.retry_delay = retry_delay


class InvalidArgument(HivewireError, code=grpc.StatusCode.INVALID_ARGUMENT):
    """A request field is malformed or out of range."""


class NotFound(HivewireError, code=grpc.StatusCode.NOT_FOUND):
    """The named task, workflow, agent or dead letter does not exist."""


class AlreadyExists(HivewireError, code=grpc.StatusCode.ALREADY_EXISTS):
    """Something with that name exists already."""


class FailedPrecondition(HivewireError, code=grpc.StatusCode.FAILED_PRECONDITION):
    """The resource is not in a state that allows the call (e.g. cancelling a finished task)."""


class ResourceExhausted(HivewireError, code=grpc.StatusCode.RESOURCE_EXHAUSTED):
    """A limit was reached: payload size, queue size, subscribers."""


class Unauthenticated(
    HivewireError, code=grpc.StatusCode.UNAUTHENTICATED, reason="BAD_AGENT_TOKEN"
):
    """An agent call without a valid agent token."""


class PermissionDenied(HivewireError, code=grpc.StatusCode.PERMISSION_DENIED):
    """The caller is known but may not do this (its role, its token's capabilities, another
    principal's agent)."""


class Unavailable(HivewireError, code=grpc.StatusCode.UNAVAILABLE):
    """A dependency (Redis, an upstream service) cannot be reached right now."""


def to_status(err: HivewireError) -> status_pb2.Status:
    """google.rpc.Status with ErrorInfo{reason, domain} and BadRequest field violations."""
    details = []
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    details.append(info)
    if err.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in err.violations
                ]
            )
        )
    if err.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(0, int(err.retry_delay * 1e9)))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    code_value = getattr(code_pb2, err.code.name)
    return status_pb2.Status(code=code_value, message=err.message, details=packed)


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a status, if any."""
    for d in status.details:
        if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            d.Unpack(info)
            return info
    return None


def retry_delay(status: status_pb2.Status) -> float | None:
    """Seconds the RetryInfo detail of a status asks the caller to wait, if it has one."""
    for d in status.details:
        if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            d.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


def field_violations(status: status_pb2.Status) -> list[FieldViolation]:
    """The BadRequest field violations of a status."""
    out: list[FieldViolation] = []
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            d.Unpack(br)
            out.extend(FieldViolation(v.field, v.description) for v in br.field_violations)
    return out
