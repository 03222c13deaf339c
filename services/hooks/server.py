"""Wiring of the hooks runner: health server, event intake, dispatcher; ordered start and stop."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import uuid
from collections.abc import Mapping

from hivewire.core.hooks_file import HooksConfig, HooksFileError
from hivewire.core.logs import setup_logging
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import cancel_and_wait
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.server import GrpcServer, create_server
from hivewire_services.hooks.actions import ActionRunner
from hivewire_services.hooks.config import (
    HooksSettings,
    load_hooks_config,
    load_hooks_settings,
    process_environment,
)
from hivewire_services.hooks.deliveries import DeliveryStore
from hivewire_services.hooks.dispatcher import Dispatcher
from hivewire_services.hooks.intake import EventIntake

logger = logging.getLogger(__name__)

EXIT_BAD_HOOKS_FILE = 2


class HooksServer(ServiceProcess):
    """One hooks runner. Several may run at once: they share the consumer group and the due set."""

    def __init__(
        self,
        settings: HooksSettings,
        config: HooksConfig,
        redis: Redis | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.keys = Keys(settings.namespace)
        self._own_redis = redis is None
        self.redis = redis or create_redis(settings.redis_url)
        self.consumer = f"hooks-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store = DeliveryStore(self.redis, self.keys, settings)
        self.actions = ActionRunner(process_environment() if env is None else env)
        self.dispatcher = Dispatcher(self.store, config, self.actions, settings)
        self.intake = EventIntake(
            self.redis, self.keys, settings, self.store, config, self.consumer, self.dispatcher.wake
        )
        self.grpc: GrpcServer | None = None
        self._intake_task: asyncio.Task[None] | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def port(self) -> int:
        if self.grpc is None:
            raise RuntimeError("hooks runner is not started")
        return self.grpc.port

    async def start(self, listen: str | None = None) -> int:
        self.grpc = await create_server(
            listen or self.settings.listen_address, lambda s: None, [], self.settings
        )
        if self.config.hooks:
            await self.store.ensure_group()
            self._intake_task = asyncio.create_task(self.intake.run(), name="hooks-intake")
            self._dispatch_task = asyncio.create_task(self.dispatcher.run(), name="hooks-dispatch")
            names = ", ".join(h.name for h in self.config.hooks)
            logger.info("hooks runner on port %d with hooks: %s", self.grpc.port, names)
        else:
            logger.info("hooks runner on port %d: no hooks configured, idle", self.grpc.port)
        return self.grpc.port

    async def shutdown(self) -> None:
        """NOT_SERVING, stop reading and claiming, let running hooks finish (bounded), close."""
        if self._stopped:
            return
        self._stopped = True
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        await cancel_and_wait([self._intake_task, self._dispatch_task])
        await self.dispatcher.drain(self.settings.shutdown_grace)
        if self.grpc is not None:
            await self.grpc.stop(self.settings.shutdown_grace)
        await self.actions.aclose()
        if self._own_redis:
            await self.redis.aclose()
        logger.info("hooks runner stopped")


def main() -> None:
    settings = load_hooks_settings()
    setup_logging(settings.log_level, settings.log_format)
    try:
        config = load_hooks_config(settings)
    except HooksFileError as exc:
        logger.error("%s", exc)
        sys.exit(EXIT_BAD_HOOKS_FILE)
    serve("hooks", lambda s: HooksServer(s, config), settings)
