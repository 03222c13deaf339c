"""Authentication of one server: its Redis client, token store, cache, audit and interceptor."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire_services.common.auth.audit import Audit
from hivewire_services.common.auth.authenticator import Authenticator
from hivewire_services.common.auth.cache import TtlCache
from hivewire_services.common.auth.interceptor import AuthInterceptor
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis, close_quietly, create_redis


@dataclass
class ServerAuth:
    redis: Redis
    interceptor: AuthInterceptor

    async def close(self) -> None:
        await close_quietly(self.redis)


def server_auth(settings: CommonSettings, service: str) -> ServerAuth | None:
    """The authentication of a server with these settings (None with authentication off)."""
    if not settings.auth_enabled:
        return None
    redis = create_redis(settings.redis_url, socket_timeout=settings.rpc_timeout)
    keys = Keys(settings.namespace)
    authenticator = Authenticator(
        TokenStore(redis, keys),
        settings.service_credential,
        TtlCache(ttl=settings.auth_cache_seconds),
    )
    return ServerAuth(redis, AuthInterceptor(authenticator, Audit(redis, keys, service)))
