"""`make bench`: run every benchmark module in turn (each writes bench/results/<name>.*)."""

from __future__ import annotations

from bench import dashboard

if __name__ == "__main__":
    dashboard.main([])
