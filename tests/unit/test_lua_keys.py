"""Lua scripts spell no key name: keys come through KEYS or the K_* constants from keys.py."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hivewire_services.common.keys import Keys, script_key_names
from hivewire_services.common.lua import constants

SERVICES = Path(__file__).resolve().parents[2] / "services"
LUA_FILES = sorted(SERVICES.rglob("*.lua"))
_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def key_names() -> set[str]:
    """Every key name of keys.py after the namespace prefix; for keys built from a name, the
    part before the name (`task:`)."""
    keys = Keys()
    names = set()
    for attr, member in inspect.getmembers(Keys):
        if attr.startswith("_") or attr == "prefix":
            continue
        if isinstance(member, property):
            value = getattr(keys, attr)
        elif inspect.isfunction(member):
            arg = 7 if "state" in attr else "f" * 32  # a valid id (or state number)
            value = getattr(keys, attr)(arg).removesuffix(str(arg))
        else:
            continue
        names.add(value.removeprefix(keys.prefix))
    return names


def lua_literals(path: Path) -> list[str]:
    """The string literals of a script, comments left out."""
    code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _STRING.finditer(code)]


def spells_a_key(literal: str, names: set[str]) -> bool:
    if "hivewire:" in literal:
        return True
    return any(
        literal == name or (literal.endswith(":") and name.startswith(literal)) for name in names
    )


def test_the_scan_finds_every_script_and_every_key_name() -> None:
    assert len(LUA_FILES) > 20
    names = key_names()
    assert {"task:", "pending:", "workflow-updates", "seq:task", "events"} <= names
    assert spells_a_key("task:", names)
    assert spells_a_key("metrics:", names)
    assert not spells_a_key("st:", names)


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: str(p.relative_to(SERVICES)))
def test_no_script_spells_a_key_name(path: Path) -> None:
    names = key_names()
    bad = [lit for lit in lua_literals(path) if spells_a_key(lit, names)]
    assert not bad, f"{path.name} builds keys from literals {bad}: use KEYS or a K_* constant"


def test_key_constants_come_from_keys_py() -> None:
    keys = Keys(namespace="other")
    task_id = "a" * 32
    assert script_key_names()["K_TASK"] + task_id == keys.task(task_id).removeprefix(keys.prefix)
    for name, value in script_key_names().items():
        assert f"local {name} = {value!r}" in constants()
        assert value in key_names()
