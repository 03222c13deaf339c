"""Flow control from the command line on the in-process stack: `hivewire ratelimit` and the
concurrency and rate limit options of `hivewire submit`, through the gateway."""

from __future__ import annotations

import json

from tests.integration.stack import Stack
from tests.integration.test_cli_wait_hints import run_cli


async def test_ratelimit_commands_and_submit_options(stack: Stack) -> None:
    code, out, err = await run_cli(stack, "ratelimit", "set", "openai", "--limit", "200000")
    assert code == 0, err
    assert out.strip() == "openai: 200000 per 60s"
    code, out, err = await run_cli(
        stack, "submit", "nobody", "--json", "--concurrency-key", "repo:api",
        "--concurrency-limit", "2", "--concurrency-strategy", "cancel-newest",
        "--rate-limit", "openai:1500",
    )  # fmt: skip
    assert code == 0, err
    task = json.loads(out)
    assert (task["concurrency_key"], task["concurrency_limit"]) == ("repo:api", 2)
    assert task["concurrency_strategy"] == "CANCEL_NEWEST"
    assert task["rate_limit_units"] == {"openai": 1500}
    code, out, err = await run_cli(stack, "ratelimit", "list", "--json")
    assert code == 0, err
    [listed] = json.loads(out)
    assert (listed["name"], listed["limit"], listed["window_seconds"]) == ("openai", 200000, 60)
    # A unit request larger than the limit, or naming no limit, is refused.
    code, _, err = await run_cli(stack, "submit", "nobody", "--rate-limit", "openai:200001")
    assert code != 0 and "INVALID_ARGUMENT" in err, err
    assert (await run_cli(stack, "ratelimit", "delete", "openai"))[0] == 0
    code, _, err = await run_cli(stack, "submit", "nobody", "--rate-limit", "openai:1")
    assert code != 0 and "does not exist" in err, err
    code, _, err = await run_cli(stack, "ratelimit", "delete", "openai")
    assert code != 0 and "NOT_FOUND" in err, err
