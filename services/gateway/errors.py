"""Gateway-specific domain errors."""

from __future__ import annotations

import grpc

from hivewire_services.common.errors import HivewireError


class OutOfRange(HivewireError, code=grpc.StatusCode.OUT_OF_RANGE):
    """A position outside what is still kept, such as a cursor older than the trimmed stream."""
