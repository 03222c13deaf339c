"""Reading a command's output as lines, bounded: long lines are split, a slow consumer slows
the command down (through the pipe) instead of growing a buffer, and a Tail keeps the end."""

from __future__ import annotations

import asyncio
import codecs
from collections import deque
from collections.abc import Awaitable, Callable

READ_CHUNK = 64 * 1024


class Tail:
    """The last lines of a stream, at most `max_lines` of them and `max_chars` characters."""

    def __init__(self, max_lines: int, max_chars: int) -> None:
        self.max_chars = max_chars
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._chars = 0
        self.last_line = ""
        """The last line that is not blank ('' if none)."""

    def add(self, line: str) -> None:
        # _chars is the joined text's length plus one: each line counts with its newline.
        if len(self._lines) == self._lines.maxlen:
            self._chars -= len(self._lines[0]) + 1
        self._lines.append(line)
        self._chars += len(line) + 1
        while self._chars - 1 > self.max_chars and len(self._lines) > 1:
            self._chars -= len(self._lines.popleft()) + 1
        if line.strip():
            self.last_line = line

    def text(self) -> str:
        """The kept lines joined by newlines (whole lines, but for one longer than the bound,
        which keeps its last `max_chars` characters)."""
        text = "\n".join(self._lines)
        return text[-self.max_chars :] if len(text) > self.max_chars else text


async def read_lines(
    reader: asyncio.StreamReader, max_line: int, on_line: Callable[[str], Awaitable[None]]
) -> None:
    """Call `on_line` with each line (UTF-8, invalid bytes replaced, without its newline) until
    EOF. A line longer than `max_line` characters comes as several. `on_line` is awaited before
    more is read, so the buffer here never exceeds max_line + READ_CHUNK."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        chunk = await reader.read(READ_CHUNK)
        pending += decoder.decode(chunk, final=not chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            for piece in _pieces(line.removesuffix("\r"), max_line):
                await on_line(piece)
        while len(pending) > max_line:
            await on_line(pending[:max_line])
            pending = pending[max_line:]
        if not chunk:
            break
    if pending:
        await on_line(pending)


def _pieces(line: str, max_line: int) -> list[str]:
    if len(line) <= max_line:
        return [line]
    return [line[i : i + max_line] for i in range(0, len(line), max_line)]
