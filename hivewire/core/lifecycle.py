"""`async with` for long-lived components: entering awaits `_enter()`, leaving `_exit()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncComponent:
    """A component used as `async with Component(...) as c:`; subclasses define the hooks."""

    async def _enter(self) -> None:
        """Nothing by default: such a component is usable once constructed."""

    async def _exit(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._exit()
