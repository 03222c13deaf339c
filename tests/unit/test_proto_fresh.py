"""Generated code in hivewire/v1 must match what `make proto` produces from protos/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _load_generator(repo_root: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_proto", repo_root / "scripts/gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(repo_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    _load_generator(repo_root).generate(tmp_path)
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "hivewire/v1").iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in (repo_root / "hivewire/v1").iterdir()
        if p.suffix in {".py", ".pyi"}
    }
    assert sorted(fresh) == sorted(committed), "files differ: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files, run `make proto`: {stale}"
