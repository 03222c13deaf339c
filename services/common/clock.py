"""Wall-clock helpers: the shared ones of hivewire.core.clock, under the services' usual path."""

from __future__ import annotations

from hivewire.core.clock import duration_from_seconds, now_ms, set_ms, ts_from_ms

__all__ = ["duration_from_seconds", "now_ms", "set_ms", "ts_from_ms"]
