"""Integration fixtures: `make_stack`, the factory over the one in-process stack."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.integration.agent_transports import TRANSPORTS
from tests.integration.stack import Stack, running_stack
from tests.settings import StackSettings

MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(settings: StackSettings) -> AsyncIterator[MakeStack]:
    """`await make_stack(coordinator=False, stream_queue_size=4)`: a started Stack on this
    test's Redis namespace (options as `running_stack`), stopped when the test ends."""
    async with contextlib.AsyncExitStack() as exits:

        async def make(**options: Any) -> Stack:
            return await exits.enter_async_context(running_stack(settings, **options))

        yield make


@pytest.fixture
async def stack(make_stack: MakeStack) -> Stack:
    """The whole in-process stack with default options."""
    return await make_stack()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """How the agent under test reaches Hivewire: each test using it runs once per transport."""
    return str(request.param)
