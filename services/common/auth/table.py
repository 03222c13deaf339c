"""The one table of who may call what: every RPC of every service -> the roles allowed.

A method missing here is denied to everyone (a test checks that every method of every service
is listed). grpc.health and reflection are open: they are how callers and probes find a service.
Roles: principal.py. `admin` may call everything; `service` is one Hivewire service calling
another (the gateway, on behalf of its caller).
"""

from __future__ import annotations

OPEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

_WRITE = frozenset({"admin", "client"})
_READ = frozenset({"admin", "client", "viewer"})
_AGENT = frozenset({"admin", "agent"})
_ADMIN = frozenset({"admin"})
_SERVICE = frozenset({"admin", "service"})
# Agents spawn child tasks of the task they run (ctx.spawn), wait for them and cancel them: the
# gateway lets an agent submit only with a parent and its attempt token (checks.check_parent).
_CHILD = frozenset({"admin", "client", "agent"})
_CHILD_READ = frozenset({"admin", "client", "viewer", "agent"})
# Direct-Redis agents register and renew with the registry themselves; the gateway does it for
# agents on AgentService streams.
_AGENT_OR_SERVICE = frozenset({"admin", "agent", "service"})

_GATEWAY = "/hivewire.v1.GatewayService/"
_COORDINATOR = "/hivewire.v1.CoordinatorService/"
_REGISTRY = "/hivewire.v1.RegistryService/"

METHOD_ROLES: dict[str, frozenset[str]] = {
    # GatewayService: the public API.
    **{
        _GATEWAY + m: _WRITE
        for m in (
            "SubmitTasks", "RetryDeadLetter", "SubmitWorkflow", "CancelWorkflow", "RunCommand",
            "SignalWorkflow", "RetryWorkflow", "CreateSchedule", "PauseSchedule",
            "ResumeSchedule", "TriggerSchedule", "DeleteSchedule",
        )
    },
    **{_GATEWAY + m: _CHILD for m in ("SubmitTask", "CancelTask")},
    _GATEWAY + "GetTask": _CHILD_READ,
    # Operators: pause a capability's queue, drain an agent, set rate limits.
    **{
        _GATEWAY + m: _ADMIN
        for m in ("PauseQueue", "ResumeQueue", "DrainAgent", "SetRateLimit", "DeleteRateLimit")
    },
    **{_GATEWAY + m: _READ for m in ("ListQueues", "ListRateLimits")},
    **{
        _GATEWAY + m: _READ
        for m in (
            "ListTasks", "StreamTaskOutput", "ListAgents", "StreamEvents",
            "WatchStats", "ListDeadLetters", "GetWorkflow", "ListWorkflows", "ListCommands",
            "GetSchedule", "ListSchedules",
        )
    },
    # AgentService: agents over one gRPC stream.
    "/hivewire.v1.AgentService/Connect": _AGENT,
    # AuthService: token administration and the audit trail.
    **{
        "/hivewire.v1.AuthService/" + m: _ADMIN
        for m in ("CreateToken", "ListTokens", "RevokeToken", "ListAuditEntries")
    },
    # CoordinatorService: only the gateway (and admins) call it.
    **{
        _COORDINATOR + m: _SERVICE
        for m in (
            "SubmitTask", "SubmitTasks", "GetTask", "ListTasks", "CancelTask", "ListDeadLetters",
            "RetryDeadLetter", "SubmitWorkflow", "GetWorkflow", "ListWorkflows",
            "CancelWorkflow", "SignalWorkflow", "RetryWorkflow", "CreateSchedule", "GetSchedule",
            "ListSchedules", "PauseSchedule", "ResumeSchedule", "TriggerSchedule",
            "DeleteSchedule", "PauseQueue", "ResumeQueue", "ListQueues", "SetRateLimit",
            "ListRateLimits", "DeleteRateLimit",
        )
    },
    # RegistryService: agents for their own lifecycle, services for the rest.
    **{
        _REGISTRY + m: _AGENT_OR_SERVICE
        for m in ("RegisterAgent", "SendHeartbeat", "DeregisterAgent")
    },
    **{
        _REGISTRY + m: _SERVICE
        for m in ("GetAgent", "ListAgents", "WatchAgents", "DrainAgent")
    },
}  # fmt: skip


def is_open(method: str) -> bool:
    return method.startswith(OPEN_PREFIXES)


def allowed(method: str, role: str) -> bool:
    """Whether `role` may call `method` (a full method name, `/package.Service/Method`)."""
    return role in METHOD_ROLES.get(method, frozenset())
