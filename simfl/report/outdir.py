"""Output folders: claimed and checked before a run, written in a temporary folder, swapped in after.

Rules (README, "Output folders"):
- the target is never the working directory or one of its parents;
- an existing target is replaced only when it is empty or a previous simfl output
  (it holds the MARKER file simfl writes into every output folder); anything else is
  refused with one line, and nothing of it is touched;
- a file in the way, a folder that cannot be written, a read-only file system: all are
  found when the folder is claimed, before any simulation or training runs;
- the output is written into a fresh temporary folder beside the target and renamed
  into place only when complete, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from simfl.errors import ScenarioError

MARKER = ".simfl-output"


def slug(name: str) -> str:
    """A scenario name as one safe path component: no separators, no leading dots, never empty."""
    s = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "-", name)
    s = re.sub(r"-{2,}", "-", s).lstrip(".-").rstrip("-")
    return s[:100] or "run"


def default_dir(name: str, suffix: str = "") -> Path:
    return Path("runs") / (slug(name) + suffix)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new folder with a random name; unlike mkdtemp it gets the user's usual permissions (umask)."""
    for _ in range(100):
        p = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            p.mkdir()
            return p
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


def _reason(e: OSError) -> str:
    return (e.strerror or str(e) or type(e).__name__).lower()


def is_simfl_output(folder: Path) -> bool:
    return (folder / MARKER).is_file() and not (folder / MARKER).is_symlink()


class OutputDir:
    """A claimed output folder. Use as a context manager: the body writes into the yielded temporary
    folder; on success it replaces the target, on any failure it is removed (and so are parent folders
    the claim created)."""

    def __init__(self, target: Path, command: str, field: str = "--out"):
        self.target = Path(target)
        self.command = command
        self.field = field
        self.tmp: Path | None = None
        self._created: list[Path] = []

    # -- checks, all before the run ----------------------------------------

    def _refuse(self, message: str) -> ScenarioError:
        return ScenarioError(message, field=self.field)

    def claim(self) -> Path:
        target = self.target
        here = Path.cwd().resolve()
        full = Path(os.path.abspath(target))
        if full.resolve() == here or full.resolve() in here.parents:
            raise self._refuse(f"{target} is the working directory or one of its parents; "
                               "give a folder of its own for the output")
        if target.is_symlink():
            raise self._refuse(f"{target} is a symbolic link; give a real folder for the output")
        if target.exists():
            if not target.is_dir():
                raise self._refuse(f"{target} is a file, not a folder; give another output folder")
            if not is_simfl_output(target) and any(target.iterdir()):
                raise self._refuse(f"{target} exists and is not a simfl output folder (it has no {MARKER} "
                                   "file), so simfl will not replace it; give a new folder or remove it yourself")
        parent = full.parent
        missing = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        if not parent.is_dir():
            raise self._refuse(f"cannot create {target}: {parent} is a file, not a folder")
        try:
            for p in reversed(missing):
                p.mkdir()
                self._created.append(p)
            self.tmp = _fresh_dir(full.parent, f".{full.name}.partial-")
        except OSError as e:
            self._remove_created()
            raise self._refuse(f"cannot write to {full.parent}: {e.strerror or e}") from None
        return self.tmp

    # -- after the run -------------------------------------------------------

    def commit(self) -> Path:
        assert self.tmp is not None, "claim() first"
        try:
            (self.tmp / MARKER).write_text(json.dumps({"tool": "simfl", "command": self.command}) + "\n")
        except OSError as e:
            self.abandon()
            raise self._refuse(f"cannot write {self.target / MARKER}: {_reason(e)}; nothing was written") from None
        target = self.target
        if target.exists() or target.is_symlink():
            # Re-checked: the folder may have changed while the run went on.
            if target.is_symlink() or not target.is_dir() or (not is_simfl_output(target) and any(target.iterdir())):
                raise self._refuse(f"{target} changed during the run and is no longer a simfl output folder; "
                                   f"the output is left in {self.tmp}")
            old = _fresh_dir(self.tmp.parent, f".{target.name}.old-")
            os.replace(target, old / "previous")
            try:
                os.replace(self.tmp, target)
            except OSError:
                os.replace(old / "previous", target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, target)
        self.tmp = None
        return target

    def abandon(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        self._remove_created()

    def _remove_created(self) -> None:
        for p in reversed(self._created):
            try:
                p.rmdir()  # only if still empty: never removes anything but what the claim made
            except OSError:
                break
        self._created = []

    def __enter__(self) -> Path:
        return self.tmp if self.tmp is not None else self.claim()

    def _shown(self, name) -> Path:
        """A file of the temporary folder under the name it would have had in the target."""
        try:
            return self.target / Path(name).relative_to(self.tmp)
        except (TypeError, ValueError):
            return self.target

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            # A disk that fills or fails while the output is written: one line, and no .partial folder left.
            where = self._shown(getattr(exc, "filename", None)) if isinstance(exc, OSError) else None
            self.abandon()
            if isinstance(exc, OSError):
                raise self._refuse(f"cannot write {where}: {_reason(exc)}; nothing was written") from None
            return
        try:
            self.commit()
        except OSError as e:  # the output is complete: keep it where it is and say where
            raise self._refuse(f"cannot move the output into {self.target}: {_reason(e)}; "
                               f"it is left in {self.tmp}") from None
