"""All Redis key names, under one prefix with a hash tag so the layout can be sharded later."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire.core.wire import INBOX_GROUP, RESULTS_GROUP
from hivewire.v1 import task_pb2
from hivewire_services.common.validation import (
    check_capability,
    check_id,
    check_name,
    check_schedule_name,
    check_tenant,
)

__all__ = [
    "HOOKS_GROUP",
    "INBOX_GROUP",
    "RESULTS_GROUP",
    "Keys",
    "key_patterns",
    "script_key_names",
    "task_state_indexes",
]

HOOKS_GROUP = "hooks"
"""Consumer group of the hooks runners on the events stream."""

TASK_STATES = tuple(s for s in task_pb2.TaskState.values() if s != task_pb2.TASK_STATE_UNSPECIFIED)


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace: `hivewire:{<namespace>}:...`.

    Every key that takes a name checks it first, so no unchecked input reaches a key name.
    """

    namespace: str = "hw"

    @property
    def prefix(self) -> str:
        return f"hivewire:{{{self.namespace}}}:"

    # Tasks
    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{check_id(task_id, 'task_id')}"

    @property
    def task_prefix(self) -> str:
        """Prefix of task hashes (Lua scripts append the id)."""
        return f"{self.prefix}task:"

    def pending(self, capability: str) -> str:
        return f"{self.prefix}pending:{check_capability(capability)}"

    @property
    def pending_prefix(self) -> str:
        return f"{self.prefix}pending:"

    def fair(self, capability: str) -> str:
        """Hash of a capability's fairness state (taskcreate.lua enqueue/dequeue): per priority
        band the virtual time served so far (`v<priority>`) and per fairness key with tasks
        queued the virtual time of its last one (`k<priority>:<key>`); deleted whenever the
        capability's pending queue empties."""
        return f"{self.prefix}fair:{check_capability(capability)}"

    @property
    def fair_prefix(self) -> str:
        return f"{self.prefix}fair:"

    @property
    def pending_capabilities(self) -> str:
        """Set of capabilities whose pending queue may be non-empty."""
        return f"{self.prefix}pending-capabilities"

    @property
    def paused_queues(self) -> str:
        """Hash capability -> when an operator paused its queue (ms): nothing is assigned."""
        return f"{self.prefix}paused-queues"

    @property
    def tasks_index(self) -> str:
        """The all-tasks index of earlier versions, no longer written: the per-state indexes
        (task_state_indexes) together hold every task once. Retention still removes the
        entries earlier versions wrote."""
        return f"{self.prefix}tasks"

    def tasks_by_state(self, state_name: str) -> str:
        """Sorted set of the ids of the tasks in one state (its number) by submission sequence."""
        return f"{self.prefix}tasks:{state_name}"

    @property
    def tasks_by_state_prefix(self) -> str:
        return f"{self.prefix}tasks:"

    def tenant_tasks(self, tenant: str) -> str:
        """Sorted set of one tenant's task ids by submission sequence (tenants other than the
        default one; the default tenant's tasks are those of tasks_index without a tenant)."""
        return f"{self.tenant_tasks_prefix}{check_tenant(tenant)}"

    @property
    def tenant_tasks_prefix(self) -> str:
        return f"{self.prefix}tenant-tasks:"

    @property
    def task_seq(self) -> str:
        return f"{self.prefix}seq:task"

    def request_id(self, request_id_hash: str) -> str:
        return f"{self.request_prefix}{request_id_hash}"

    @property
    def request_prefix(self) -> str:
        return f"{self.prefix}request:"

    @property
    def due(self) -> str:
        """Sorted set of task ids waiting for a retry backoff or a delayed start (SCHEDULED),
        scored by due time (ms)."""
        return f"{self.prefix}due"

    @property
    def task_leases(self) -> str:
        """Sorted set of task ids in flight by lease expiry (ms), renewed by agent heartbeats."""
        return f"{self.prefix}task-leases"

    @property
    def start_deadlines(self) -> str:
        """Sorted set of never-started task ids by schedule-to-start deadline (ms)."""
        return f"{self.prefix}start-deadlines"

    @property
    def attempt_deadlines(self) -> str:
        """Sorted set of task ids in flight by start-to-close deadline (ms)."""
        return f"{self.prefix}attempt-deadlines"

    @property
    def progress_deadlines(self) -> str:
        """Sorted set of task ids in flight with a progress_timeout, by the time their attempt
        must next report progress or output (ms)."""
        return f"{self.prefix}progress-deadlines"

    def output(self, task_id: str) -> str:
        """Stream of a task's output chunks (OutputChunk bytes); deleted with the task."""
        return f"{self.prefix}output:{check_id(task_id, 'task_id')}"

    @property
    def output_prefix(self) -> str:
        return f"{self.prefix}output:"

    @property
    def reclaim_agents(self) -> str:
        """Sorted set of agents gone offline whose inbox awaits reclaim, by time (ms)."""
        return f"{self.prefix}reclaim-agents"

    @property
    def finished(self) -> str:
        """Sorted set of terminal task ids by end time (ms), for retention."""
        return f"{self.prefix}finished"

    # Flow control (docs/flow-control.md)
    def conc_holders(self, key: str) -> str:
        """Set of task ids holding a concurrency key (ASSIGNED or RUNNING attempts)."""
        return f"{self.conc_holders_prefix}{check_name(key, 'concurrency_key')}"

    @property
    def conc_holders_prefix(self) -> str:
        return f"{self.prefix}conc-holders:"

    def conc_wait(self, key: str) -> str:
        """Sorted set of PENDING task ids parked until a holder of the key ends, in pending
        queue order (priority, then age)."""
        return f"{self.conc_wait_prefix}{check_name(key, 'concurrency_key')}"

    @property
    def conc_wait_prefix(self) -> str:
        return f"{self.prefix}conc-wait:"

    @property
    def rate_limits(self) -> str:
        """Hash rate limit name -> "<limit> <window ms>"."""
        return f"{self.prefix}rate-limits"

    @property
    def rate_usage(self) -> str:
        """Hash rate limit name -> "<window start ms> <units used in it>"."""
        return f"{self.prefix}rate-usage"

    def rate_waiting(self, name: str) -> str:
        """Sorted set of task ids waiting (in the due set) for the limit's next window."""
        return f"{self.rate_waiting_prefix}{check_name(name, 'rate_limit')}"

    @property
    def rate_waiting_prefix(self) -> str:
        return f"{self.prefix}rate-waiting:"

    # Agents
    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{check_id(agent_id, 'agent_id')}"

    @property
    def agent_prefix(self) -> str:
        return f"{self.prefix}agent:"

    @property
    def live_agents(self) -> str:
        """Sorted set of live (ONLINE, DRAINING) agent ids by registration sequence."""
        return f"{self.prefix}agents"

    @property
    def offline_agents(self) -> str:
        """Sorted set of offline agent ids still stored, by when they went offline (ms, made
        unique); pruned after the offline retention, when their hashes expire."""
        return f"{self.prefix}offline-agents"

    @property
    def agent_seq(self) -> str:
        return f"{self.prefix}seq:agent"

    @property
    def leases(self) -> str:
        """Sorted set of live agent ids by lease expiry (ms)."""
        return f"{self.prefix}leases"

    @property
    def agent_load(self) -> str:
        """Hash agent id -> tasks delivered and not yet finished."""
        return f"{self.prefix}agent-load"

    def inbox(self, agent_id: str) -> str:
        return f"{self.prefix}inbox:{check_id(agent_id, 'agent_id')}"

    @property
    def inbox_prefix(self) -> str:
        return f"{self.prefix}inbox:"

    @property
    def agent_changes(self) -> str:
        """Stream of membership changes (what WatchAgents tails)."""
        return f"{self.prefix}agent-changes"

    # Shared streams
    @property
    def results(self) -> str:
        return f"{self.prefix}results"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead-letters"

    @property
    def ended_parents(self) -> str:
        """Stream of tasks with children that ended in a state other than SUCCEEDED (field
        task_id), consumed by the coordinators, which cancel those children (children.py)."""
        return f"{self.prefix}ended-parents"

    @property
    def workflow_updates(self) -> str:
        """Stream of workflow tasks that reached a terminal state (fields task_id,
        workflow_id, step_id, state), consumed by the workflow engine's consumer group."""
        return f"{self.prefix}workflow-updates"

    def workflow(self, workflow_id: str) -> str:
        return f"{self.prefix}workflow:{check_id(workflow_id, 'workflow_id')}"

    @property
    def workflow_prefix(self) -> str:
        return f"{self.prefix}workflow:"

    @property
    def workflows_index(self) -> str:
        """Sorted set of every workflow id by submission sequence."""
        return f"{self.prefix}workflows"

    def workflows_by_state(self, state: int) -> str:
        """Sorted set of workflow ids in one WorkflowState, by submission sequence."""
        return f"{self.workflows_by_state_prefix}{int(state)}"

    @property
    def workflows_by_state_prefix(self) -> str:
        return f"{self.prefix}workflows:"

    @property
    def workflows_finished(self) -> str:
        """Sorted set of ended workflow ids by end time (ms), for retention."""
        return f"{self.prefix}workflows-finished"

    def tenant_workflows(self, tenant: str) -> str:
        """Sorted set of one tenant's workflow ids by submission sequence (as tenant_tasks)."""
        return f"{self.tenant_workflows_prefix}{check_tenant(tenant)}"

    @property
    def tenant_workflows_prefix(self) -> str:
        return f"{self.prefix}tenant-workflows:"

    @property
    def workflow_seq(self) -> str:
        return f"{self.prefix}seq:workflow"

    def workflow_request(self, request_id_hash: str) -> str:
        """Idempotency: a SubmitWorkflow request_id (hashed) -> workflow id."""
        return f"{self.workflow_request_prefix}{request_id_hash}"

    @property
    def workflow_request_prefix(self) -> str:
        return f"{self.prefix}workflow-request:"

    def task_children(self, task_id: str) -> str:
        """Set of the child tasks a running task spawned (cancelled with it)."""
        return f"{self.task_children_prefix}{check_id(task_id, 'task_id')}"

    @property
    def task_children_prefix(self) -> str:
        return f"{self.prefix}task-children:"

    @property
    def workflow_timers(self) -> str:
        """Sorted set "<workflow id>/<step id>" -> when a sleep step wakes or a signal step
        times out (ms); the workflow timer loop fires what is due."""
        return f"{self.prefix}workflow-timers"

    # Schedules
    def schedule(self, name: str) -> str:
        """Hash: one recurring schedule (definition, next/last fire, counts)."""
        return f"{self.schedule_prefix}{check_schedule_name(name)}"

    @property
    def schedule_prefix(self) -> str:
        return f"{self.prefix}schedule:"

    @property
    def schedules_index(self) -> str:
        """Sorted set of schedule names (score 0: paged by name)."""
        return f"{self.prefix}schedules"

    @property
    def schedules_due(self) -> str:
        """Sorted set of schedule names by when the firing loop next looks at them (ms)."""
        return f"{self.prefix}schedules-due"

    # Hooks
    def hook_delivery(self, delivery_id: str) -> str:
        """Hash: one hook run for one event (hook, entry, event bytes, attempt, last_error)."""
        return f"{self.prefix}hook-delivery:{check_id(delivery_id, 'delivery_id')}"

    @property
    def hook_delivery_prefix(self) -> str:
        return f"{self.prefix}hook-delivery:"

    @property
    def hook_due(self) -> str:
        """Sorted set of delivery ids by when they may run next (ms): new, retrying or leased."""
        return f"{self.prefix}hook-due"

    @property
    def hook_entries(self) -> str:
        """Hash events-stream entry id -> hook deliveries of it not yet settled."""
        return f"{self.prefix}hook-entries"

    @property
    def hook_events_lost(self) -> str:
        """Counter: events the hooks group lost (trimmed from the events stream unread)."""
        return f"{self.prefix}hook-events-lost"

    # Authentication (services/common/auth)
    def auth_token(self, token_id: str) -> str:
        """Hash: one API token (name, role, tenant, capabilities, created_ms, revoked and the
        SHA-256 of the whole token; never the token itself)."""
        return f"{self.auth_token_prefix}{check_id(token_id, 'token_id')}"

    @property
    def auth_token_prefix(self) -> str:
        return f"{self.prefix}auth-token:"

    @property
    def auth_token_names(self) -> str:
        """Hash token name -> token id (names are unique)."""
        return f"{self.prefix}auth-token-names"

    @property
    def auth_audit(self) -> str:
        """Stream of denied calls (UNAUTHENTICATED, PERMISSION_DENIED), trimmed to a bound."""
        return f"{self.prefix}auth-audit"

    # Metrics
    @property
    def task_counters(self) -> str:
        """Hash "<counter>|<capability>" -> count, kept by the coordinators' metrics feed."""
        return f"{self.prefix}metrics:tasks"

    # Harnesses
    @property
    def chaos_executions(self) -> str:
        """Hash task id -> handler executions, written by the chaos harness's agents
        (`make chaos`) so its offline checker can compare work done with results applied."""
        return f"{self.prefix}chaos-executions"


def task_state_indexes(keys: Keys) -> list[str]:
    """Every state's index (Keys.tasks_by_state): together every task, each in one of them."""
    return [keys.tasks_by_state(str(state)) for state in TASK_STATES]


def script_key_names() -> dict[str, str]:
    """Key names scripts complete themselves, relative to the namespace prefix (ARGV `prefix`).

    A script that reads an id (a task's capability, a workflow's task) builds that key itself;
    the Lua loader turns each entry into a `local K_... = '...'` line, so no .lua file spells a
    key name and renaming a key here renames it in every script.
    """
    k = Keys()
    named = {
        "K_TASK": k.task_prefix,
        "K_PENDING": k.pending_prefix,
        "K_FAIR": k.fair_prefix,
        "K_TASKS_BY_STATE": k.tasks_by_state_prefix,
        "K_AGENT": k.agent_prefix,
        "K_INBOX": k.inbox_prefix,
        "K_WORKFLOW": k.workflow_prefix,
        "K_WORKFLOWS_BY_STATE": k.workflows_by_state_prefix,
        "K_WORKFLOW_UPDATES": k.workflow_updates,
        "K_ENDED_PARENTS": k.ended_parents,
        "K_OUTPUT": k.output_prefix,
        "K_PROGRESS_DEADLINES": k.progress_deadlines,
        "K_TENANT_TASKS": k.tenant_tasks_prefix,
        "K_TENANT_WORKFLOWS": k.tenant_workflows_prefix,
        "K_SCHEDULE": k.schedule_prefix,
        "K_DUE": k.due,
        "K_CONC_HOLDERS": k.conc_holders_prefix,
        "K_CONC_WAIT": k.conc_wait_prefix,
        "K_RATE_LIMITS": k.rate_limits,
        "K_RATE_USAGE": k.rate_usage,
        "K_RATE_WAITING": k.rate_waiting_prefix,
        "K_AUTH_TOKEN": k.auth_token_prefix,
    }
    return {name: key.removeprefix(k.prefix) for name, key in named.items()}


def key_patterns(k: Keys) -> dict[str, str]:
    """Every key of a namespace by name, a family of keys (`task:<id>`) as a Redis glob: what
    the ACL rules grant (redis_acl.py). A unit test checks that every key name above matches
    one of these, so a new key cannot be left out of the rules."""
    families = {
        "task": k.task_prefix,
        "pending": k.pending_prefix,
        "fair": k.fair_prefix,
        "tasks_by_state": k.tasks_by_state_prefix,
        "request": k.request_prefix,
        "output": k.output_prefix,
        "agent": k.agent_prefix,
        "inbox": k.inbox_prefix,
        "workflow": k.workflow_prefix,
        "workflows_by_state": k.workflows_by_state_prefix,
        "workflow_request": k.workflow_request_prefix,
        "hook_delivery": k.hook_delivery_prefix,
        "task_children": k.task_children_prefix,
        "tenant_tasks": k.tenant_tasks_prefix,
        "tenant_workflows": k.tenant_workflows_prefix,
        "schedule": k.schedule_prefix,
        "conc_holders": k.conc_holders_prefix,
        "conc_wait": k.conc_wait_prefix,
        "rate_waiting": k.rate_waiting_prefix,
        "auth_token": k.auth_token_prefix,
    }
    single = (
        "pending_capabilities", "tasks_index", "task_seq", "due", "task_leases",
        "start_deadlines", "attempt_deadlines", "progress_deadlines", "reclaim_agents",
        "finished", "live_agents", "offline_agents", "agent_seq", "leases", "agent_load",
        "agent_changes", "results", "events", "dead_letters", "workflow_updates", "ended_parents",
        "workflows_index", "workflows_finished", "workflow_seq", "hook_due", "hook_entries",
        "task_counters", "chaos_executions", "hook_events_lost", "workflow_timers",
        "schedules_index", "schedules_due", "paused_queues", "rate_limits", "rate_usage",
        "auth_token_names", "auth_audit",
    )  # fmt: skip
    return {
        **{name: f"{prefix}*" for name, prefix in families.items()},
        **{name: str(getattr(k, name)) for name in single},
    }
