"""The `hivewire` command, and the local stack it runs (`hivewire up`: supervisor, embedded Redis,
demo agents)."""

from hivewire.cli._app import app, main

__all__ = ["app", "main"]
