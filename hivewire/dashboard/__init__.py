"""The terminal dashboard (`hivewire dashboard`)."""

from __future__ import annotations

from hivewire.dashboard.app import Dashboard

__all__ = ["Dashboard"]
