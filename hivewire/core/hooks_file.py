"""The hooks file (HIVEWIRE_HOOKS_FILE), parsed and validated at load: errors name the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hivewire.core.event_names import event_name, event_type
from hivewire.v1 import event_pb2

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 5
MAX_TIMEOUT = 3600.0
MAX_ATTEMPTS = 100
# A webhook secret shorter than this is refused: the HMAC is only as strong as its key.
MIN_SECRET_BYTES = 32
# A hook reacting to hook events could trigger itself forever.
LOOP_TYPES = frozenset({event_pb2.EVENT_TYPE_HOOK_SUCCEEDED, event_pb2.EVENT_TYPE_HOOK_FAILED})


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so the key `on` stays the string "on"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class HooksFileError(ValueError):
    """The hooks file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class HookFilter:
    """Every set part must match; a list matches any of its values."""

    capabilities: frozenset[str] = frozenset()
    commands: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.capabilities or self.commands or self.labels)


@dataclass(frozen=True)
class CommandAction:
    """Run argv (no shell) with the event as JSON on stdin; exit status 0 is success."""

    argv: tuple[str, ...]
    timeout: float = DEFAULT_TIMEOUT
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookAction:
    """POST the event as JSON, signed with HMAC-SHA256; a 2xx status is success."""

    url: str
    secret: bytes = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)


Action = CommandAction | WebhookAction


@dataclass(frozen=True)
class Hook:
    name: str
    on: frozenset[int]
    action: Action
    filter: HookFilter = HookFilter()
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @property
    def timeout(self) -> float:
        return self.action.timeout


@dataclass(frozen=True)
class HooksConfig:
    hooks: tuple[Hook, ...] = ()

    def by_name(self, name: str) -> Hook | None:
        return next((h for h in self.hooks if h.name == name), None)

    def for_type(self, type_: int) -> list[Hook]:
        """Hooks listening to an event type (their filters still have to match)."""
        return [h for h in self.hooks if type_ in h.on]

    @property
    def longest_timeout(self) -> float:
        return max((h.timeout for h in self.hooks), default=DEFAULT_TIMEOUT)


def load_hooks(
    path: str | Path, env: Mapping[str, str], default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> HooksConfig:
    """Read and validate a hooks file; HooksFileError says what is wrong and where."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise HooksFileError(f"{path}: cannot read hooks file: {exc.strerror or exc}") from None
    return parse_hooks(text, str(path), env, default_max_attempts)


def parse_hooks(
    text: str, source: str, env: Mapping[str, str], default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> HooksConfig:
    """Parse hooks YAML (`hooks:` list); `env` resolves `secret_env` names."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise HooksFileError(f"{source}: not valid YAML: {exc}") from None
    p = _Parser(source, env, default_max_attempts)
    if doc is None:
        return HooksConfig()
    root = p.mapping(doc, "", {"hooks"})
    items = root.get("hooks")
    items = [] if items is None else items
    if not isinstance(items, list):
        raise p.error("hooks", "must be a list of hooks")
    hooks = tuple(p.hook(item, f"hooks[{i}]") for i, item in enumerate(items))
    seen: set[str] = set()
    for i, hook in enumerate(hooks):
        if hook.name in seen:
            raise p.error(f"hooks[{i}].name", f"duplicate hook name {hook.name!r}")
        seen.add(hook.name)
    return HooksConfig(hooks)


class _Parser:
    def __init__(self, source: str, env: Mapping[str, str], default_max_attempts: int) -> None:
        self.source = source
        self.env = env
        self.default_max_attempts = default_max_attempts

    def error(self, where: str, message: str) -> HooksFileError:
        return HooksFileError(f"{self.source}: {where}: {message}" if where else message)

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where or "top level", "must be a mapping")
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.error(_join(where, str(key)), f"unknown field (allowed: {known})")
        return value

    def strings(self, value: Any, where: str) -> list[str]:
        """A string or a non-empty list of strings."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
            raise self.error(where, "must be a string or a non-empty list of strings")
        return items

    def number(self, value: Any, where: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise self.error(where, f"must be a number of seconds above {low:g} and up to {high:g}")
        return float(value)

    def string_map(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) for k, v in value.items()
        ):
            raise self.error(where, "must be a mapping of names to strings")
        return {k: str(v) for k, v in value.items()}

    def hook(self, value: Any, where: str) -> Hook:
        h = self.mapping(
            value, where, {"name", "on", "filter", "command", "webhook", "max_attempts"}
        )
        name = h.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.error(f"{where}.name", "required: 1-64 of a-z 0-9 . _ -, starting a-z/0-9")
        where = f"{where} ({name})"
        if "on" not in h:
            raise self.error(f"{where}.on", "required: event types such as task.failed")
        on: set[int] = set()
        for t in self.strings(h["on"], f"{where}.on"):
            try:
                number = event_type(t)
            except ValueError as exc:
                raise self.error(f"{where}.on", str(exc)) from None
            if number in LOOP_TYPES:
                raise self.error(
                    f"{where}.on", f"{event_name(number)}: hooks cannot react to hook events"
                )
            on.add(number)
        if ("command" in h) == ("webhook" in h):
            raise self.error(where, "needs exactly one action: command or webhook")
        action: Action = (
            self.command(h["command"], f"{where}.command")
            if "command" in h
            else self.webhook(h["webhook"], f"{where}.webhook")
        )
        attempts = h.get("max_attempts", self.default_max_attempts)
        if (
            isinstance(attempts, bool)
            or not isinstance(attempts, int)
            or not 1 <= attempts <= MAX_ATTEMPTS
        ):
            raise self.error(
                f"{where}.max_attempts", f"must be a whole number from 1 to {MAX_ATTEMPTS}"
            )
        filt = (
            self.filter(h["filter"], f"{where}.filter")
            if h.get("filter") is not None
            else HookFilter()
        )
        return Hook(name, frozenset(on), action, filt, attempts)

    def filter(self, value: Any, where: str) -> HookFilter:
        f = self.mapping(value, where, {"capability", "command", "labels"})
        caps = self.strings(f["capability"], f"{where}.capability") if "capability" in f else []
        cmds = self.strings(f["command"], f"{where}.command") if "command" in f else []
        labels = self.string_map(f["labels"], f"{where}.labels") if "labels" in f else {}
        return HookFilter(frozenset(caps), frozenset(cmds), labels)

    def command(self, value: Any, where: str) -> CommandAction:
        c = (
            {"argv": value}
            if isinstance(value, list)
            else self.mapping(value, where, {"argv", "timeout", "cwd", "env"})
        )
        argv = c.get("argv")
        for i, arg in enumerate(argv if isinstance(argv, list) else []):
            if not isinstance(arg, str):
                raise self.error(
                    f"{where}.argv[{i}]",
                    f"YAML read {arg!r}, not a string: quote it (e.g. 'true', '1')",
                )
        if not isinstance(argv, list) or not argv or not argv[0]:
            raise self.error(
                f"{where}.argv",
                "must be a non-empty list of strings (no shell: use [sh, -c, '...'])",
            )
        timeout = self.number(c.get("timeout", DEFAULT_TIMEOUT), f"{where}.timeout", 0, MAX_TIMEOUT)
        cwd = c.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise self.error(f"{where}.cwd", "must be a directory path")
        env = self.string_map(c["env"], f"{where}.env") if "env" in c else {}
        return CommandAction(tuple(argv), timeout, cwd, env)

    def webhook(self, value: Any, where: str) -> WebhookAction:
        w = self.mapping(value, where, {"url", "secret", "secret_env", "timeout", "headers"})
        url = w.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(f"{where}.url", "must be an http:// or https:// URL")
        if ("secret" in w) == ("secret_env" in w):
            raise self.error(
                where, "needs exactly one of secret (inline) or secret_env (a variable name)"
            )
        if "secret" in w:
            secret, key, source = w["secret"], "secret", "the inline secret"
            if not isinstance(secret, str) or not secret:
                raise self.error(f"{where}.secret", "must be a non-empty string")
        else:
            var, key = w["secret_env"], "secret_env"
            if not isinstance(var, str) or not _ENV_NAME.fullmatch(var):
                raise self.error(f"{where}.secret_env", "must be an environment variable name")
            secret, source = self.env.get(var, ""), f"the secret in {var}"
            if not secret:
                raise self.error(f"{where}.secret_env", f"environment variable {var} is not set")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise self.error(
                f"{where}.{key}",
                f"{source} is {len(secret.encode())} bytes; webhook secrets need at least "
                f"{MIN_SECRET_BYTES} (make one with: openssl rand -hex 32)",
            )
        timeout = self.number(w.get("timeout", DEFAULT_TIMEOUT), f"{where}.timeout", 0, MAX_TIMEOUT)
        headers = self.string_map(w["headers"], f"{where}.headers") if "headers" in w else {}
        return WebhookAction(str(url), secret.encode(), timeout, headers)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
