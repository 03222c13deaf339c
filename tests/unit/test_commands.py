"""Custom command templates: loading, typed parameters, substitution, errors naming the culprit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hivewire.v1 import command_pb2, workflow_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.gateway.commands import CommandCatalog

REPO_COMMANDS = Path(__file__).resolve().parents[2] / "commands"

TEMPLATE = """
name: tpl
description: every type
parameters:
  - {name: s, type: string, required: true}
  - {name: i, type: int, default: 3}
  - {name: f, type: float, default: 0.5}
  - {name: b, type: bool, default: false}
  - {name: l, type: list, default: [x, y]}
steps:
  - id: one
    capability: echo
    payload: {s: "${s}", i: "${i}", f: "${f}", b: "${b}", l: "${l}", text: "n=${i} $${raw}"}
"""


def catalog(tmp_path: Path, text: str = TEMPLATE, name: str = "tpl.yaml") -> CommandCatalog:
    (tmp_path / name).write_text(text)
    return CommandCatalog(tmp_path)


def payload(req: workflow_pb2.SubmitWorkflowRequest) -> object:
    return json.loads(req.steps[0].payload)


def test_typed_parameters_and_substitution(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    [cmd] = cat.list()
    assert cmd.name == "tpl" and cmd.step_ids == ["one"]
    assert [(p.name, p.type, p.required) for p in cmd.parameters][:2] == [
        ("s", command_pb2.PARAMETER_TYPE_STRING, True),
        ("i", command_pb2.PARAMETER_TYPE_INT, False),
    ]
    assert cmd.parameters[4].default_json == '["x", "y"]'
    req = cat.render("tpl", {"s": "hi", "i": "7", "b": "yes", "l": "a, b,c"})
    assert (req.name, req.command) == ("tpl", "tpl")
    assert payload(req) == {
        "s": "hi",
        "i": 7,
        "f": 0.5,
        "b": True,
        "l": ["a", "b", "c"],
        "text": "n=7 ${raw}",
    }
    assert payload(cat.render("tpl", {"s": "x", "l": '[1, "two"]'}))["l"] == [1, "two"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({}, "params.s", "required"),
        ({"s": "x", "i": "seven"}, "params.i", "must be an int"),
        ({"s": "x", "f": "nan"}, "params.f", "must be a float"),
        ({"s": "x", "b": "maybe"}, "params.b", "must be a bool"),
        ({"s": "x", "zzz": "1"}, "params.zzz", "unknown parameter"),
        ({"s": "x", "l": "[" * 65 + "]" * 65}, "params.l", "nested deeper than 64 levels"),
        ({"s": "x", "l": "[" * 100_000}, "params.l", "nested deeper than 64 levels"),
        ({"s": "x", "l": "[" + "1," * 600_000 + "1]"}, "params.l", "over the limit of"),
    ],
)
def test_bad_parameters_name_the_parameter(
    tmp_path: Path, params: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        catalog(tmp_path).render("tpl", params)
    assert [v.field for v in err.value.violations] == [field]
    assert words in err.value.message


def test_unknown_command_and_broken_files(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    (tmp_path / "broken.yaml").write_text("name: broken\nsteps: [{id: a, payload: '${nope}'}]\n")
    (tmp_path / "junk.yaml").write_text(": : :")
    assert [c.name for c in cat.list()] == ["tpl"]  # broken files are skipped (and logged)
    with pytest.raises(InvalidArgument) as err:
        cat.render("nope", {})
    assert err.value.reason == "COMMAND_NOT_FOUND"
    assert err.value.violations[0].field == "name"
    assert "tpl" in err.value.message


def test_shipped_commands_make_valid_workflows() -> None:
    cat = CommandCatalog(REPO_COMMANDS)
    names = [c.name for c in cat.list()]
    assert {"analyze-text", "diamond"} <= set(names)
    analyze = cat.render("analyze-text", {"text": "a b c", "chunks": "2"})
    defn = validate_workflow(analyze, SubmissionSettings())
    assert [s.step_id for s in defn.steps] == ["split", "count", "merge"]
    assert defn.step("count").map_over == "split"
    assert json.loads(analyze.steps[0].payload) == {"text": "a b c", "chunks": 2}
    diamond = validate_workflow(cat.render("diamond", {}), SubmissionSettings())
    assert diamond.step("join").depends_on == ("count", "shout")
