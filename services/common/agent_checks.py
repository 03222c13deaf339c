"""Edge checks of what an agent declares: registration fields and running task ids.

Shared by the registry (RegisterAgent, SendHeartbeat) and the gateway (AgentService hello), so
an agent is held to the same limits whichever way it connects. `prefix` names the enclosing
message in field violations ("hello." gives "hello.max_concurrency").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hivewire_services.common.errors import InvalidArgument, PermissionDenied
from hivewire_services.common.principal import current
from hivewire_services.common.validation import check_capability, check_id, check_labels

MAX_NAME = 128
MAX_CAPABILITIES = 64
MAX_CONCURRENCY = 10_000
MAX_RUNNING_IDS = 10_000


class Declared(Protocol):
    """The registration fields (RegisterAgentRequest, AgentHello)."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> Sequence[str]: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


def validate_registration(request: Declared, prefix: str = "") -> list[str]:
    """Check the registration fields; returns the capabilities without duplicates, in order."""
    if not 1 <= len(request.name) <= MAX_NAME:
        raise InvalidArgument(
            f"{prefix}name must be 1-{MAX_NAME} characters", field=f"{prefix}name"
        )
    if not 1 <= len(request.capabilities) <= MAX_CAPABILITIES:
        raise InvalidArgument(
            f"{prefix}capabilities must list 1-{MAX_CAPABILITIES} names",
            field=f"{prefix}capabilities",
        )
    for i, capability in enumerate(request.capabilities):
        check_capability(capability, f"{prefix}capabilities[{i}]")
    if not 1 <= request.max_concurrency <= MAX_CONCURRENCY:
        raise InvalidArgument(
            f"{prefix}max_concurrency must be between 1 and {MAX_CONCURRENCY}",
            field=f"{prefix}max_concurrency",
        )
    check_labels(request.labels, f"{prefix}labels")
    check_token_capabilities(request.capabilities, prefix)
    return list(dict.fromkeys(request.capabilities))


def check_token_capabilities(capabilities: Sequence[str], prefix: str = "") -> None:
    """PERMISSION_DENIED naming the capability when the caller's agent token does not allow
    it (an agent token with no capabilities listed may register any)."""
    principal = current()
    if principal.role != "agent" or not principal.capabilities:
        return
    for i, capability in enumerate(capabilities):
        if capability not in principal.capabilities:
            raise PermissionDenied(
                f"token {principal.name!r} may not register capability {capability!r} "
                f"(it allows {', '.join(sorted(principal.capabilities))})",
                reason="CAPABILITY_NOT_ALLOWED",
                field=f"{prefix}capabilities[{i}]",
            )


def may_act_for(owner: str) -> bool:
    """Whether the caller may heartbeat, deregister or resume an agent that `owner` (a
    principal name) registered: its owner, an admin, or a service acting for nobody else."""
    principal = current()
    return principal.role in ("admin", "service") or not owner or owner == principal.name


def check_running_ids(task_ids: Sequence[str], field: str = "running_task_ids") -> list[str]:
    """Running task ids (a heartbeat's, a resuming hello's): bounded, each a task id."""
    if len(task_ids) > MAX_RUNNING_IDS:
        raise InvalidArgument(f"{field} lists more than {MAX_RUNNING_IDS} tasks", field=field)
    for i, task_id in enumerate(task_ids):
        check_id(task_id, f"{field}[{i}]")
    return list(dict.fromkeys(task_ids))
