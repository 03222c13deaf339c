"""Wiring of the hooks runner: health server, event intake, dispatcher; ordered start and stop."""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from collections.abc import Mapping

from hivewire.core.hooks_file import HooksConfig, HooksFileError
from hivewire.core.logs import setup_logging
from hivewire_services.common.keys import Keys
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis
from hivewire_services.hooks.actions import ActionRunner
from hivewire_services.hooks.config import (
    HooksSettings,
    load_hooks_config,
    load_hooks_settings,
    process_environment,
)
from hivewire_services.hooks.deliveries import DeliveryStore
from hivewire_services.hooks.dispatcher import Dispatcher
from hivewire_services.hooks.group import HooksGroup
from hivewire_services.hooks.intake import EventIntake

logger = logging.getLogger(__name__)

EXIT_BAD_HOOKS_FILE = 2


class HooksServer(ServiceProcess[HooksSettings]):
    """One hooks runner. Several may run at once: they share the consumer group and the due set."""

    name = "hooks runner"

    def __init__(
        self,
        settings: HooksSettings,
        config: HooksConfig,
        redis: Redis | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, redis)
        self.config = config
        self.keys = Keys(settings.namespace)
        self.consumer = f"hooks-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store = DeliveryStore(self.redis, self.keys, settings)
        self.group = HooksGroup(self.redis, self.keys, settings)
        self.actions = ActionRunner(process_environment() if env is None else env)
        self.dispatcher = Dispatcher(self.store, config, self.actions, settings)
        self.intake = EventIntake(
            self.redis,
            self.keys,
            settings,
            self.store,
            self.group,
            config,
            self.consumer,
            self.dispatcher.wake,
        )

    async def _start(self, listen: str) -> int:
        server = await self.owned.serve(listen, lambda s: None, [])
        if self.config.hooks:
            await self.intake.check_losses()  # creates the group; counts events lost while down
            self.owned.spawn(self.intake.run(), "hooks-intake")
            self.owned.spawn(self.dispatcher.run(), "hooks-dispatch")
            names = ", ".join(h.name for h in self.config.hooks)
            logger.info("hooks runner on port %d with hooks: %s", server.port, names)
        else:
            logger.info("hooks runner on port %d: no hooks configured, idle", server.port)
        return server.port

    async def _release(self) -> None:
        """Let running hooks finish (bounded by the grace), then close the action runner."""
        await self.dispatcher.drain(self.settings.shutdown_grace)
        await self.actions.aclose()


def main() -> None:
    settings = load_hooks_settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        config = load_hooks_config(settings)
    except HooksFileError as exc:
        logger.error("%s", exc)
        sys.exit(EXIT_BAD_HOOKS_FILE)
    serve("hooks", lambda s: HooksServer(s, config), settings)
