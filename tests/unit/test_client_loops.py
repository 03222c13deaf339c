"""The client's page iterator and poll loop, and the CLI's --limit and key=value helpers."""

from __future__ import annotations

import itertools

import pytest
import typer

from hivewire.cli._call import first, key_values
from hivewire.client._loops import every_item, poll
from hivewire.core.convert import enum_name
from hivewire.v1 import task_pb2


async def test_every_item_reads_pages_until_the_token_is_empty() -> None:
    pages = {"": ([1, 2], "a"), "a": ([], "b"), "b": ([3], "")}
    asked: list[str] = []

    async def page(token: str) -> tuple[list[int], str]:
        asked.append(token)
        return pages[token]

    assert [i async for i in every_item(page)] == [1, 2, 3]
    assert asked == ["", "a", "b"]


async def test_first_stops_at_the_limit() -> None:
    async def endless(token: str) -> tuple[list[int], str]:
        return [int(token or 0)], str(int(token or 0) + 1)

    assert await first(every_item(endless), 3) == [0, 1, 2]


async def test_poll_returns_when_done_and_times_out_otherwise() -> None:
    counter = itertools.count()

    async def get() -> int:
        return next(counter)

    assert await poll(get, lambda n: n >= 2, itertools.repeat(0.0), 5.0, "thing") == 2
    with pytest.raises(TimeoutError, match=r"thing not finished after 0\.01s"):
        await poll(get, lambda n: False, itertools.repeat(0.001), 0.01, "thing")


def test_key_values_parses_and_names_the_option() -> None:
    assert key_values(["a=1", "b=x=y", "c="], "-p") == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(typer.BadParameter) as bad:
        key_values(["novalue"], "--label")
    assert bad.value.param_hint == "--label"


def test_enum_name_drops_the_prefix() -> None:
    assert enum_name(task_pb2.TaskState, task_pb2.TASK_STATE_RUNNING, "TASK_STATE_") == "RUNNING"
