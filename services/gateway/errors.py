"""Gateway-specific domain errors."""

from __future__ import annotations

import grpc

from hivewire_services.common.errors import HivewireError


class OutOfRange(HivewireError, code=grpc.StatusCode.OUT_OF_RANGE):
    """A position outside what is still kept, such as a cursor older than the trimmed stream."""


class Aborted(HivewireError, code=grpc.StatusCode.ABORTED):
    """An agent stream ended by the gateway: the identity was lost or taken over; reconnect."""


class DeadlineExceeded(HivewireError, code=grpc.StatusCode.DEADLINE_EXCEEDED):
    """An agent stream that stayed silent too long (no hello, no heartbeat)."""
