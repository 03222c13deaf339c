"""The wheel ships the SDK as `hivewire` and the services as `hivewire_services`, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path


def test_wheel_installs_only_the_projects_own_top_level_names(
    repo_root: Path, tmp_path: Path
) -> None:
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    source = tmp_path / "src"
    skip = shutil.ignore_patterns(".*", "node_modules", "build", "*.egg-info", "__pycache__")
    shutil.copytree(repo_root, source, symlinks=True, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", str(source), "--no-deps",
         "--no-build-isolation", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hivewire-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"hivewire", "hivewire_services"}  # never a generic `services`
    shipped = {n.removeprefix("hivewire_services/") for n in names}
    scripts = {
        str(p.relative_to(repo_root / "services")) for p in (repo_root / "services").rglob("*.lua")
    }
    assert scripts and scripts <= shipped, scripts - shipped
    assert "hivewire/py.typed" in names
