"""`python -m hivewire_services.common.auth.bootstrap NAME:ROLE[:CAPS] ...`: (re-)issue named
tokens straight into Redis (HIVEWIRE_REDIS_URL, HIVEWIRE_NAMESPACE) and print `NAME=TOKEN` per
line. `hivewire up --secure` runs it for its admin token and its demo agents' tokens; each run
re-issues them, so the tokens of an earlier run stop working."""

from __future__ import annotations

import asyncio
import sys

from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.config import CommonSettings, load_settings
from hivewire_services.common.errors import HivewireError
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import close_quietly, create_redis


async def issue(specs: list[str]) -> list[str]:
    settings = load_settings(CommonSettings)
    redis = create_redis(settings.redis_url)
    try:
        store = TokenStore(redis, Keys(settings.namespace))
        lines = []
        for spec in specs:
            name, role, caps = [*spec.split(":"), ""][:3]
            token, _ = await store.create(
                name, role, capabilities=[c for c in caps.split(",") if c], replace=True
            )
            lines.append(f"{name}={token}")
        return lines
    finally:
        await close_quietly(redis)


def main() -> None:
    try:
        lines = asyncio.run(issue(sys.argv[1:]))
    except (HivewireError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    sys.stdout.write("".join(f"{line}\n" for line in lines))


if __name__ == "__main__":
    main()
