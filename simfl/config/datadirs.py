"""Where shipped and user data files are found: the data folders, first match wins."""

from __future__ import annotations

import os
import stat
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The copy of the shipped data inside the installed package (links to the repo's folders in a checkout).
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "_data"
PROFILE_DIR = "hardware_profiles"
NETWORK_DIR = "network_models"


def search_dirs(kind: str, near: Path | None = None, beside: bool = False) -> list[Path]:
    """Where a data file named by bare name is looked for, first match wins.

    SIMFL_DATA_PATH (os.pathsep-separated roots), the scenario's folder and its
    parents up to the filesystem root, the working directory, then the project's own
    (the checkout's folders, or the copy installed with the package); in each root,
    its `kind` folder (network_models/, hardware_profiles/). With `beside`, the
    scenario's folder itself comes first after SIMFL_DATA_PATH: a bare name `lte-up5`
    finds lte-up5.yaml lying next to the scenario, before any folder of that name.
    """
    env: list[Path] = [Path(p) for p in os.environ.get("SIMFL_DATA_PATH", "").split(os.pathsep) if p]
    roots = [*env, *([near, *near.parents] if near is not None else []), Path.cwd(), REPO_ROOT, PACKAGE_DATA]
    dirs = [root / kind for root in roots]
    if beside and near is not None:
        dirs.insert(len(env), near)
    seen: list[Path] = []
    for d in dirs:
        if not d.is_dir():  # most candidates do not exist: resolving them first was most of a point's load time
            continue
        d = d.resolve()
        if d not in seen:
            seen.append(d)
    return seen


def available(kind: str, near: Path | None = None) -> list[Path]:
    """The YAML data files of a kind, by name, first found wins; only regular files count."""
    return available_files(kind, "*.y*ml", near, (".yaml", ".yml"))


def available_files(kind: str, pattern: str, near: Path | None = None,
                    suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The data files of a kind matching `pattern` (and of those suffixes), by name, first found wins; only
    regular files count (a FIFO named like a profile is never listed, nor opened)."""
    files: dict[str, Path] = {}
    for d in search_dirs(kind, near):
        for p in sorted(d.glob(pattern)):
            if (suffixes is None or p.suffix in suffixes) and _is_regular(p):
                files.setdefault(p.stem, p)
    return [files[k] for k in sorted(files)]


def _is_regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(p).st_mode)
    except (OSError, ValueError):
        return False
