"""Exec agents: a command's output read as bounded lines from a real asyncio StreamReader."""

from __future__ import annotations

import asyncio

from hivewire.agent.exec._lines import read_lines


async def lines_of(chunks: list[bytes], max_line: int = 100) -> list[str]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    got: list[str] = []

    async def on_line(line: str) -> None:
        got.append(line)

    await read_lines(reader, max_line, on_line)
    return got


async def test_lines_across_chunks_crlf_and_a_last_line_without_newline() -> None:
    assert await lines_of([b"one\ntw", b"o\r\n\nthr", b"ee"]) == ["one", "two", "", "three"]


async def test_utf8_split_between_chunks_and_invalid_bytes() -> None:
    e_acute = "é".encode()
    assert await lines_of([b"caf" + e_acute[:1], e_acute[1:] + b"\n\xff!\n"]) == [
        "café",
        "\ufffd!",
    ]


async def test_long_lines_come_in_pieces_of_max_line() -> None:
    assert await lines_of([b"abcdefg\nhi", b"jklmnop"], max_line=3) == [
        "abc", "def", "g", "hij", "klm", "nop",
    ]  # fmt: skip


async def test_a_line_far_longer_than_a_read_comes_in_pieces() -> None:
    # 1 MiB without a newline, fed at once: pieces of max_line, nothing lost.
    got = await lines_of([b"x" * (1 << 20)], max_line=1000)
    assert {len(piece) for piece in got[:-1]} == {1000}
    assert sum(len(piece) for piece in got) == 1 << 20
