"""The user's files, read and written safely: regular files only, bounded reads, strict UTF-8, bounded YAML, atomic writes."""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from simfl.errors import ScenarioError, escape, short

MB = 1_000_000
YAML_MAX_BYTES = 8 * MB  # a scenario, profile, network model, sweep or plan file (the shipped ones are < 50 kB)
CSV_MAX_BYTES = 256 * MB  # an availability trace or a carbon series (10 million members, a row each)
TABLE_MAX_BYTES = 8 * MB  # a convergence table, a training summary
JSONL_MAX_BYTES = 1000 * MB  # training text (SAMSum is 12 MB), a sweep's journal
MAX_NODES = 100_000  # values in one YAML document, an alias counting as all it repeats (the shipped files: < 400)
MAX_DEPTH = 100  # nesting of YAML lists and mappings (a scenario nests 5 deep)

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _fail(path, reason: str, field: str | None) -> ScenarioError:
    """'PATH: reason' as the message under a field, or the file itself when no field names it."""
    return ScenarioError(f"{path}: {reason}", field=field) if field else ScenarioError(reason, file=path)


def _not_regular(mode: int) -> str | None:
    kind = next((what for test, what in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a file")
    return None if kind is None else f"{kind}, not a regular file"


def _os_reason(e: OSError, path) -> str:
    if e.errno == errno.ENOENT:
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return f"a dangling symbolic link (to {os.readlink(path)}, which does not exist)"
        except OSError:
            pass
        return "file not found"
    return {errno.ELOOP: "a symbolic link loop (links that point at each other)",
            errno.EACCES: "permission denied", errno.EPERM: "permission denied",
            errno.ENAMETOOLONG: "file name too long", errno.ENOTDIR: "file not found (a part of the path is a file)",
            }.get(e.errno, (e.strerror or str(e)).lower())


def regular_file(path: str | os.PathLike, *, field: str | None = None) -> Path:
    """`path` if it is (a link to) a regular file; else one line saying what it is. Never blocks."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise _fail(path, _os_reason(e, path) if isinstance(e, OSError) else "not a file name", field) from None
    why = _not_regular(mode)
    if why:
        raise _fail(path, why, field)
    return Path(path)


def open_regular(path: str | os.PathLike, *, field: str | None = None):
    """A regular file opened for reading in binary (for reading line by line), checked as read_bytes does."""
    regular_file(path, field=field)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _fail(path, _os_reason(e, path), field) from None
    why = _not_regular(os.fstat(fd).st_mode)
    if why:
        os.close(fd)
        raise _fail(path, why, field)
    return os.fdopen(fd, "rb")


def read_bytes(path: str | os.PathLike, *, field: str | None = None, what: str = "file",
               max_bytes: int = YAML_MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most max_bytes: a FIFO, a device or a folder is refused before it is
    opened (and again after, opened without blocking, in case it was swapped in between)."""
    regular_file(path, field=field)
    too_big = f"larger than the {max_bytes / MB:,.0f} MB limit for a{'n' if what[0] in 'aeiou' else ''} {what}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _fail(path, _os_reason(e, path), field) from None
    try:
        st = os.fstat(fd)
        why = _not_regular(st.st_mode)
        if why:
            raise _fail(path, why, field)
        if st.st_size > max_bytes:
            raise _fail(path, too_big, field)
        chunks, got = [], 0
        while got <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > max_bytes:  # grew while being read, or a size the file system does not report
            raise _fail(path, too_big, field)
        return b"".join(chunks)
    except OSError as e:
        raise _fail(path, _os_reason(e, path), field) from None
    finally:
        os.close(fd)


_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16"))


def decode(data: bytes, path, field: str | None = None) -> str:
    """Strict UTF-8 (one leading byte-order mark dropped); UTF-16/32 and binary data are one line."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise _fail(path, f"{name} text (it starts with a {name} byte-order mark); expected UTF-8 text: "
                              "save it as UTF-8", field)
    data = data.removeprefix(b"\xef\xbb\xbf")
    nul = data.find(b"\0")
    if nul >= 0:
        raise _fail(path, f"binary or UTF-16 data (a NUL byte at offset {nul:,}); expected UTF-8 text", field)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(path, f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start:,}); expected UTF-8 "
                          "text", field) from None


def read_text(path: str | os.PathLike, *, field: str | None = None, what: str = "scenario file",
              max_bytes: int = YAML_MAX_BYTES) -> str:
    """The text of a regular UTF-8 file of at most max_bytes; anything else is one line naming the file."""
    return decode(read_bytes(path, field=field, what=what, max_bytes=max_bytes), path, field)


# -- YAML ------------------------------------------------------------------------------------------------


class Loader(yaml.SafeLoader):
    """The safe loader (no python-object tags), plus: a key given twice in one mapping is an error (PyYAML
    keeps the last silently); 1e9 is a float as in YAML 1.2 (PyYAML 1.1 reads it as the string "1e9");
    nesting deeper than MAX_DEPTH and more than MAX_NODES values (aliases expanded, so a "billion laughs"
    is one) are refused while composing, before anything is built; PyYAML reads about 30,000 values a second."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth, self._nodes = 0, 0
        self._size: dict[int, int] = {}  # id(node) -> nodes in it, aliases expanded
        self._height: dict[int, int] = {}

    def _count(self, nodes: int, mark, through_alias: bool) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            how = "aliases expand it to " if through_alias else ""
            raise yaml.composer.ComposerError(None, None, f"{how}more than {MAX_NODES:,} values, the limit for a "
                                              "YAML document", mark)

    def _too_deep(self, mark) -> yaml.YAMLError:
        return yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep, the limit", mark)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            if id(node) not in self._size:
                raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} is inside the node it names "
                                                  "(a cycle)", event.start_mark)
            self._count(self._size[id(node)], event.start_mark, True)
            if self._depth + self._height[id(node)] > MAX_DEPTH:
                raise self._too_deep(event.start_mark)
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._too_deep(mark)
        self._count(1, mark, False)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = ()
        self._size[id(node)] = 1 + sum(self._size[id(c)] for c in children)
        self._height[id(node)] = 1 + max((self._height[id(c)] for c in children), default=0)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
            except TypeError:
                continue  # unhashable key: the constructor reports it
            if dup:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {short(key)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _unshare(x: Any) -> Any:
    """A copy in which no two places share one list or mapping (an alias's copy can be changed on its own)."""
    if isinstance(x, dict):
        return {k: _unshare(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unshare(v) for v in x]
    return x


def load_yaml(text: str, source: str | os.PathLike | None = None) -> Any:
    """Parse YAML text with Loader; an error or a limit is one line naming `source` and the place."""
    try:
        return _unshare(yaml.load(text, Loader=Loader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScenarioError(f"YAML error at {where}{problem}", file=source) from None
    except RecursionError:  # a last guard: MAX_DEPTH stops nesting long before this
        raise ScenarioError(f"YAML error: nested too deeply (the limit is {MAX_DEPTH} levels)", file=source) from None


# -- writing ---------------------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, field: str | None = "--out") -> None:
    """Write a file whole or not at all: `write(tmp)` fills a new temporary file beside `path`, which is
    flushed to disk and renamed over `path`. On any error the temporary file is removed and the old file
    is as it was; a disk that is full or read-only is one line naming the file."""
    path = Path(path)
    tmp = None
    try:
        for _ in range(100):
            tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # a replaced file keeps its permissions
        except FileNotFoundError:
            pass
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        try:  # the rename itself, made durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except OSError as e:
        raise ScenarioError(f"cannot write {path}: {(e.strerror or str(e)).lower()}; the old file, if any, is "
                            "unchanged", field=field) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, field: str | None = "--out") -> None:
    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    atomic_write(path, write, field=field)


def atomic_write_text(path: str | os.PathLike, text: str, *, field: str | None = "--out") -> None:
    atomic_write_bytes(path, text.encode("utf-8"), field=field)


__all__ = ["CSV_MAX_BYTES", "JSONL_MAX_BYTES", "Loader", "MAX_NODES", "MAX_DEPTH", "TABLE_MAX_BYTES",
           "YAML_MAX_BYTES", "atomic_write", "atomic_write_bytes", "atomic_write_text", "decode", "escape",
           "load_yaml", "open_regular", "read_bytes", "read_text", "regular_file"]
