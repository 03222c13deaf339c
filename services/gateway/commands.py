"""Custom commands: named workflow templates kept as YAML files in HIVEWIRE_COMMANDS_DIR.

A command file has `name`, `description`, `failure_policy`, `parameters` (a list of
{name, type: string|int|float|bool|list, required, default, description}) and `steps` in the
workflow file format (hivewire/core/workflow_file.py). Any string in the steps may refer to a
parameter as `${name}`: a string that is exactly `${name}` becomes the typed value (an int
stays an int, a list a list); inside longer text the value is spliced in as text (JSON for
lists and bools). `$${` is a literal `${`. The directory is read on every call, so edits to a
file apply to the next RunCommand.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hivewire.core.workflow_file import WorkflowFileError, load_yaml, policy_value, workflow_request
from hivewire.v1 import command_pb2, workflow_pb2
from hivewire_services.common.errors import FieldViolation, InvalidArgument
from hivewire_services.common.validation import check_capability
from hivewire_services.common.validation_json import JsonRejected, loads_bounded

logger = logging.getLogger(__name__)

MAX_FILES = 200
MAX_FILE_BYTES = 256 * 1024
_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_-]*)\}")
TYPES = {
    "string": command_pb2.PARAMETER_TYPE_STRING,
    "int": command_pb2.PARAMETER_TYPE_INT,
    "float": command_pb2.PARAMETER_TYPE_FLOAT,
    "bool": command_pb2.PARAMETER_TYPE_BOOL,
    "list": command_pb2.PARAMETER_TYPE_LIST,
}
# The repository's commands/ directory, used when ./commands does not exist.
_SOURCE_COMMANDS = Path(__file__).resolve().parents[2] / "commands"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool
    default: Any
    description: str


@dataclass(frozen=True)
class CommandDef:
    name: str
    description: str
    params: tuple[Param, ...]
    doc: dict[str, Any]

    def to_proto(self) -> command_pb2.Command:
        return command_pb2.Command(
            name=self.name,
            description=self.description,
            parameters=[
                command_pb2.CommandParameter(
                    name=p.name,
                    type=TYPES[p.type],
                    required=p.required,
                    default_json="" if p.default is None else json.dumps(p.default),
                    description=p.description,
                )
                for p in self.params
            ],
            step_ids=[str(s.get("id", s.get("step_id", ""))) for s in self.doc["steps"]],
        )


def convert(param: Param, value: Any, field: str, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """A value (text from the CLI, or a YAML default) as the parameter's type; a list given as
    JSON text is parsed within the JSON limits (services/common/validation_json.py)."""
    kind = param.type
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind == "string":
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if text is not None:
                return int(text)
            if isinstance(value, int):
                return value
            raise ValueError
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            number = float(text) if text is not None else float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if isinstance(value, list):
            return value
        if text is None:
            raise ValueError
        if text.startswith("["):
            items = loads_bounded(text, max_bytes)
            if not isinstance(items, list):
                raise ValueError
            return items
        return [part.strip() for part in text.split(",") if part.strip()]
    except JsonRejected as exc:
        raise InvalidArgument(
            f"parameter {param.name!r} {exc}", reason="BAD_COMMAND_PARAMETER", field=field
        ) from None
    except (ValueError, TypeError):
        raise InvalidArgument(
            f"parameter {param.name!r} must be {'an' if kind == 'int' else 'a'} {kind},"
            f" not {str(value)[:60]!r}",
            reason="BAD_COMMAND_PARAMETER",
            field=field,
        ) from None


def substitute(value: Any, params: dict[str, Any]) -> Any:
    """Replace `${name}` references in every string of a YAML value."""
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    if not isinstance(value, str):
        return value
    whole = _REF.fullmatch(value)
    if whole and whole.group(1):
        return params[whole.group(1)]

    def text(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return "${"
        v = params[m.group(1)]
        return v if isinstance(v, str) else json.dumps(v)

    return _REF.sub(text, value)


def references(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    if isinstance(value, str):
        return {m.group(1) for m in _REF.finditer(value) if m.group(1)}
    return set()


def parse_command(doc: dict[str, Any], fallback_name: str) -> CommandDef:
    """A command from its YAML document; WorkflowFileError names the bad part."""
    name = str(doc.get("name") or fallback_name)
    try:
        check_capability(name, "name")
    except InvalidArgument as exc:
        raise WorkflowFileError("name", exc.message) from None
    raw_params = doc.get("parameters") or []
    if not isinstance(raw_params, list):
        raise WorkflowFileError("parameters", "must be a list")
    params: list[Param] = []
    for i, p in enumerate(raw_params):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise WorkflowFileError(f"parameters[{i}]", "needs a name")
        kind = str(p.get("type", "string"))
        if kind not in TYPES:
            raise WorkflowFileError(
                f"parameters[{i}].type", f"{kind!r} is not one of {list(TYPES)}"
            )
        param = Param(
            p["name"], kind, bool(p.get("required", False)), None, str(p.get("description", ""))
        )
        default = p.get("default")
        if default is not None:
            try:
                default = convert(param, default, f"parameters[{i}].default")
            except InvalidArgument as exc:
                raise WorkflowFileError(f"parameters[{i}].default", exc.message) from None
        params.append(Param(param.name, kind, param.required, default, param.description))
    declared = {p.name for p in params}
    unknown = sorted(references(doc.get("steps")) - declared)
    if unknown:
        raise WorkflowFileError("steps", f"refers to undeclared parameter {unknown[0]!r}")
    policy_value(doc.get("failure_policy"))
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise WorkflowFileError("steps", "must be a non-empty list of mappings")
    return CommandDef(name, str(doc.get("description", "")), tuple(params), doc)


def commands_dir(configured: str) -> Path:
    """HIVEWIRE_COMMANDS_DIR, else ./commands, else the commands/ next to the source tree."""
    if configured:
        return Path(configured)
    here = Path("commands")
    return here if here.is_dir() else _SOURCE_COMMANDS


class CommandCatalog:
    """The command files of one directory, read on demand."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self) -> dict[str, CommandDef]:
        out: dict[str, CommandDef] = {}
        if not self.directory.is_dir():
            return out
        files = sorted(self.directory.glob("*.yaml")) + sorted(self.directory.glob("*.yml"))
        for path in files[:MAX_FILES]:
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise WorkflowFileError("file", f"larger than {MAX_FILE_BYTES} bytes")
                command = parse_command(load_yaml(path.read_text(), "file"), path.stem)
            except (OSError, WorkflowFileError) as exc:
                logger.warning("skipping command file %s: %s", path, exc)
                continue
            out.setdefault(command.name, command)
        return out

    def list(self) -> list[command_pb2.Command]:
        return [c.to_proto() for _, c in sorted(self.load().items())]

    def render(
        self,
        name: str,
        given: dict[str, str],
        request_id: str = "",
        max_bytes: int = MAX_FILE_BYTES,
    ) -> workflow_pb2.SubmitWorkflowRequest:
        """The workflow a command runs with these parameters; INVALID_ARGUMENT names the problem."""
        commands = self.load()
        command = commands.get(name)
        if command is None:
            raise InvalidArgument(
                f"unknown command {name[:70]!r}; have {', '.join(sorted(commands)) or 'none'}",
                reason="COMMAND_NOT_FOUND",
                field="name",
            )
        known = {p.name: p for p in command.params}
        bad = [
            FieldViolation(f"params.{k[:70]}", f"unknown parameter {k[:70]!r} of {name}")
            for k in given
            if k not in known
        ]
        values: dict[str, Any] = {}
        for p in command.params:
            if p.name in given:
                try:
                    values[p.name] = convert(p, given[p.name], f"params.{p.name}", max_bytes)
                except InvalidArgument as exc:
                    bad.extend(exc.violations)
            elif p.default is not None:
                values[p.name] = p.default
            elif p.required:
                bad.append(FieldViolation(f"params.{p.name}", f"parameter {p.name!r} is required"))
            else:
                values[p.name] = None
        if bad:
            raise InvalidArgument(
                "; ".join(v.description for v in bad),
                reason="BAD_COMMAND_PARAMETER",
                violations=bad,
            )
        doc = dict(command.doc)
        doc["steps"] = substitute(doc["steps"], values)
        try:
            req = workflow_request(doc, request_id)
        except WorkflowFileError as exc:
            raise InvalidArgument(
                f"command {name} does not make a valid workflow: {exc}", field=exc.field
            ) from None
        req.name = name
        req.command = name
        return req
