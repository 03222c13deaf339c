"""Reading the container files as data: Dockerfile, .dockerignore, docker-compose.yml, and the
`hivewire` commands README.md tells a user to run against the compose stack."""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
README_COMPOSE_HEADING = "## Docker Compose"


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: PurePosixPath  # absolute, in the image
    into_dir: bool  # dest is a directory the sources go into (several sources, or "dest/")

    def target(self, source: str, is_dir: bool) -> PurePosixPath:
        """Where `source` lands: a directory's contents go to dest, a file into or as dest."""
        return self.dest / PurePosixPath(source).name if self.into_dir and not is_dir else self.dest


@dataclass
class Image:
    """What a Dockerfile puts where: its WORKDIR, ENV, COPY lines and `ln -s` links."""

    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    links: list[tuple[str, PurePosixPath]] = field(default_factory=list)  # (target, link path)

    def copied_to(self, source: str, context: Path = ROOT) -> PurePosixPath | None:
        """Where the build-context path `source` lands in the image (None: not copied)."""
        for copy in self.copies:
            if source in copy.sources:
                return copy.target(source, (context / source).is_dir())
        return None


def parse_dockerfile(text: str) -> Image:
    """The instructions this project's Dockerfile uses (WORKDIR, ENV k=v, COPY, RUN ln -s)."""
    image = Image()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "WORKDIR":
            image.workdir = image.workdir / rest.strip()
        elif instruction == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                image.env[key] = value
        elif instruction == "COPY":
            *sources, dest = [a for a in shlex.split(rest) if not a.startswith("--")]
            into_dir = len(sources) > 1 or dest.endswith("/")
            names = tuple(s.rstrip("/") for s in sources)
            image.copies.append(Copy(names, image.workdir / dest, into_dir))
        elif instruction == "RUN":
            for target, link in re.findall(r"\bln -s (\S+) (\S+)", rest):
                image.links.append((target, image.workdir / link))
    return image


def dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.exists() else []
    patterns = [ln.strip().strip("/") for ln in lines if ln.strip() and not ln.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "exceptions are not handled here"
    return patterns


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` leave the context path `relative` out of the build."""
    for pattern in patterns:
        if fnmatch.fnmatch(relative, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatch(relative, pattern[3:]):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatch(relative, "*/" + pattern[3:]):
            return True
    return False


def lay_out_image(context: Path, image: Image, root: Path) -> Path:
    """Copy into `root` (the image's /) only what the Dockerfile COPYs from `context`, minus
    .dockerignore, and make its `ln -s` links; returns the WORKDIR under `root`."""
    patterns = dockerignore(context)

    def skip(directory: str, names: list[str]) -> set[str]:
        base = Path(directory).relative_to(context)
        return {n for n in names if ignored(str(base / n), patterns)}

    def host(path: PurePosixPath) -> Path:
        return root / path.relative_to("/")

    for copy in image.copies:
        for source in copy.sources:
            origin = context / source
            assert origin.exists() and not ignored(source, patterns), (
                f"COPY {source}: not in context"
            )
            out = host(copy.target(source, origin.is_dir()))
            if origin.is_dir():
                shutil.copytree(origin, out, symlinks=True, ignore=skip, dirs_exist_ok=True)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, out)
    for target, link in image.links:
        host(link).symlink_to(target)
    workdir = host(image.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def load_compose(root: Path = ROOT) -> dict[str, Any]:
    return dict(yaml.safe_load((root / "docker-compose.yml").read_text()))


def hivewire_services(compose: dict[str, Any]) -> list[str]:
    """The services built from the Hivewire image, in an order that starts every dependency
    first (file order among the ready ones, as compose's depends_on allows)."""
    services = compose["services"]
    ours = [name for name, spec in services.items() if "build" in spec]
    started = {name for name in services if name not in ours}
    order: list[str] = []
    while len(order) < len(ours):
        ready = [
            n for n in ours if n not in order and set(services[n].get("depends_on", {})) <= started
        ]
        assert ready, f"a depends_on cycle among {sorted(set(ours) - set(order))}"
        order.append(ready[0])
        started.add(ready[0])
    return order


def readme_compose_commands(readme: str) -> list[list[str]]:
    """argv of every `hivewire ...` line in the sh blocks of README's Docker Compose section."""
    start = readme.index(README_COMPOSE_HEADING + "\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end >= 0 else None]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    lines = [ln for block in blocks for ln in block.splitlines()]
    return [shlex.split(ln, comments=True) for ln in lines if ln.startswith("hivewire ")]
