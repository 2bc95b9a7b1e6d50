"""Small file helpers shared by the store, plans and exporters."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, StoreError


def default_cache_dir() -> Path:
    """The cache root: ``$MIXOPT_CACHE``, else ``~/.cache/mixopt``."""
    return Path(os.environ.get("MIXOPT_CACHE", Path.home() / ".cache" / "mixopt"))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (temp file + fsync + rename)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all, with the mode a plain ``open`` would give (0o666 & ~umask)."""
    path = Path(path)
    make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())  # mkstemp creates 0600; a written file should follow the umask
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _cannot_write(path, exc) from None
    return path


def make_parent(path: Path) -> Path:
    """Create the missing folders above ``path`` (``mkdir -p``); a read-only or full disk is a one-line StoreError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    return path


def _cannot_write(path: Path, exc: OSError) -> StoreError:
    return StoreError(f"Cannot write {shown_path(path)}: {exc.strerror or exc}. Check that the directory is writable and the "
                      "disk has space.")


def atomic_write_files(directory: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Write ``files`` (``{file name: text or bytes}``) into ``directory`` as one transaction: all or nothing.

    Every file is first written and fsynced in a staging directory (hidden, on the same file system). A new
    ``directory`` is then the staging directory renamed into place. In an existing one, each file replaces its
    target by rename, after a hard link (or copy) of the old file was kept; if any step fails, the files already
    replaced get their old versions back and new ones are removed, so the previous contents stay byte for byte.
    Files in ``directory`` that are not in ``files`` are left alone. Raises `StoreError` (one line) on OS errors.
    """
    directory = Path(directory)
    bad = [n for n in files if not n or n in (".", "..") or "/" in n or os.sep in n]
    if bad:
        raise ValueError(f"atomic_write_files takes plain file names; got {bad}")
    created: list[Path] = []
    staging: Path | None = None
    try:
        _make_dirs(directory.parent, created)
        fresh = not directory.exists()
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent if fresh else directory))
        for name, data in files.items():
            _write_synced(staging / name, data.encode("utf-8") if isinstance(data, str) else data)
        if fresh:
            os.chmod(staging, dir_mode())  # mkdtemp creates 0700
            os.rename(staging, directory)
        else:
            _swap_in(staging, directory, list(files))
            shutil.rmtree(staging, ignore_errors=True)
        staging = None
        _fsync_dir(directory.parent if fresh else directory)
    except _RollbackFailed:
        raise  # the staging directory holds the only copy of the old files the error names
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_dirs(created)
        if not isinstance(exc, OSError):
            raise
        which = f" ({Path(exc.filename).name})" if isinstance(exc.filename, str) else ""
        raise StoreError(
            f"Cannot write into {shown_path(directory)}{which}: {exc.strerror or exc}. Nothing was changed there; "
            "check that the directory is writable and the disk has space."
        ) from None
    return [directory / name for name in files]


def _swap_in(staging: Path, directory: Path, names: list[str]) -> None:
    """Rename each staged file over its target; on any error put every old file back, then re-raise."""
    backups = staging / ".previous"
    backups.mkdir()
    done: list[tuple[Path, Path | None]] = []  # (target, kept old version or None when the target is new)
    try:
        for name in names:
            target, kept = directory / name, None
            if os.path.lexists(target):
                kept = backups / name
                _keep(target, kept)
            os.replace(staging / name, target)
            done.append((target, kept))
    except BaseException as exc:
        lost = []
        for target, kept in reversed(done):
            try:
                if kept is None:
                    target.unlink(missing_ok=True)
                else:
                    os.replace(kept, target)
            except OSError:
                lost.append(target.name)
        if lost:
            raise _RollbackFailed(
                f"Cannot write into {shown_path(directory)} ({exc}), and putting back the previous {', '.join(lost)} "
                f"failed too: the previous versions are in {shown_path(backups)}. Move them back by hand."
            ) from exc
        raise


class _RollbackFailed(StoreError):
    """A failed write whose rollback failed as well: the staging directory holds the old files."""


def _keep(target: Path, kept: Path) -> None:
    """A second name for ``target``'s current contents: a hard link where possible, else a copy."""
    try:
        os.link(target, kept, follow_symlinks=False)
    except OSError:
        shutil.copy2(target, kept, follow_symlinks=False)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:  # mode 0o666 & ~umask, like any new file
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the renames are done either way
    finally:
        os.close(fd)


def _make_dirs(directory: Path, created: list[Path]) -> None:
    """``mkdir -p``, appending each directory it creates to ``created`` (outermost first)."""
    missing = []
    d = directory
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        created.append(d)


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            pass


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``), else by setting it back."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask, as ``open(path, "w")`` gives it."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new directory under the current umask, as ``mkdir`` gives it."""
    return 0o777 & ~current_umask()


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


class _RepeatedKey(yaml.constructor.ConstructorError):
    """A mapping that lists one key twice (PyYAML would keep the last value silently)."""

    def __init__(self, key, first: int, second: int):
        super().__init__(problem=f"repeated key {key!r}")
        self.key, self.first, self.second = key, first, second


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping listing a key twice, e.g. a pasted second ``proxy:`` block, whose
    settings would replace the first block's without a word. Keys brought in by a merge (``<<: *anchor``) may be
    overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in seen:
                        raise _RepeatedKey(key, seen[key], key_node.start_mark.line + 1)
                    seen[key] = key_node.start_mark.line + 1
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path, *, what: str, missing_hint: str, fix_hint: str = "Fix the syntax.", empty_hint: str | None = None):
    """Parse a YAML file; a missing, unreadable, empty, non-UTF-8 or broken file, or a directory, is a one-line ConfigError.

    ``empty_hint`` (default ``missing_hint``) follows the error for a file that holds no YAML data (empty, or comments only).
    """
    path = Path(path)
    shown = shown_path(path)
    if path.is_dir():
        try:
            inside = sorted(p.name for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        except OSError:
            inside = []
        example = f", e.g. {shown_path(path / inside[0])}" if inside else f" (no .yaml file is in {shown})"
        raise ConfigError(f"{what} {shown} is a directory, not a file. Pass the path of the {what.lower()} itself{example}.")
    if not path.exists() and path.is_symlink():  # e.g. a copied folder whose relative links now point nowhere
        try:
            target = os.readlink(path)
        except OSError:
            target = "a missing file"
        raise ConfigError(f"{what} {shown} is a broken link: it points to {target}, which does not exist (copy with "
                          f"`cp -L` to copy the files, not the links). {missing_hint}")
    if not path.exists():  # anything else that exists is read: a pipe such as <(...) too
        raise ConfigError(f"{what} {shown} does not exist. {missing_hint}")
    try:
        raw = yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except _RepeatedKey as exc:
        raise ConfigError(f"{what} {shown} repeats key '{_printable_key(exc.key)}' (lines {exc.first} and {exc.second}); YAML would keep "
                          "only the last one and drop the first's settings. Merge them into one.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {shown} is not valid YAML ({' '.join(str(exc).split())}). {fix_hint}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {shown} is not UTF-8 text. Save it as UTF-8 YAML.") from None
    except OSError as exc:
        raise ConfigError(f"{what} {shown} cannot be read ({exc.strerror or exc}). Check its permissions.") from None
    if raw is None:
        raise ConfigError(f"{what} {shown} is empty (it holds no YAML data). {empty_hint or missing_hint}")
    return raw


def _printable_key(key) -> str:
    text = str(key)
    return text if text.isprintable() else repr(text)[1:-1]


def shown_path(path: str | Path) -> str:
    """A path as errors print it: as is, or quoted with escapes when it holds line breaks or control characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)


# Output folders a command fills with files of fixed names (`mixopt demo --out`, `mixopt report --out`): each records
# the files it wrote in a small hidden manifest, `.mixopt-COMMAND.json`, so that a rerun replaces its own files and
# refuses, before any work, to replace a file of the same name that it did not write (a user's plan.yaml, index.html).
# (`mixopt select --out` decides the same from its own selection.json.)

def written_marker(folder: str | Path, command: str) -> Path:
    """The manifest of the files ``mixopt COMMAND`` wrote into ``folder``."""
    return Path(folder) / f".mixopt-{command}.json"


def written_by(folder: str | Path, command: str) -> set[str]:
    """Names (relative to ``folder``; a trailing ``/`` for a folder) that ``mixopt COMMAND`` recorded writing into
    ``folder``; empty without a readable manifest."""
    try:
        body = json.loads(written_marker(folder, command).read_text())
    except (OSError, ValueError):
        return set()
    files = body.get("files") if isinstance(body, dict) and body.get("command") == command else None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()


def record_written(folder: str | Path, command: str, names) -> None:
    """Add ``names`` (relative to ``folder``) to the manifest of ``mixopt COMMAND``'s files there; call it before writing
    them, so an interrupted command's folder is still its own."""
    names = {str(n) for n in names}
    known = written_by(folder, command)
    if names <= known and written_marker(folder, command).is_file():
        return
    atomic_write_json(written_marker(folder, command), {"command": command, "files": sorted(known | names)})


def not_written_by(folder: str | Path, command: str, names) -> list[str]:
    """Those of ``names`` (relative to ``folder``) that exist there but ``mixopt COMMAND`` did not record writing."""
    known = written_by(folder, command)
    return [n for n in names if n not in known and (Path(folder) / n).exists()]


def refuse_foreign(flag: str, folder: str | Path, command: str, foreign: list[str], *, why: str = "") -> None:
    """Raise the one-line error for ``foreign``: files in ``folder`` (``flag``) that ``mixopt COMMAND`` would replace
    and that nothing shows an earlier ``mixopt COMMAND`` wrote (its manifest does not list them, and ``why``, when
    given, says what else was looked at: e.g. what an older mixopt's folder, written before manifests, would hold).
    Nothing when ``foreign`` is empty. The fix offered is another ``flag``; moving the files out only when none is a
    folder (a demo's ``store/`` holds runs that a rerun resumes: never advised away)."""
    if not foreign:
        return
    shown = (", ".join(foreign[:6]) + f" and {len(foreign) - 6} more" if len(foreign) > 6
             else ", ".join(foreign[:-1]) + f" and {foreign[-1]}" if len(foreign) > 1 else foreign[0])
    them = "it" if len(foreign) == 1 else "them"
    marker = written_marker(folder, command)
    listed = (f"{marker.name} does not list {them}" if marker.is_file()
              else f"there is no {marker.name}")
    move = "" if any(f.endswith("/") for f in foreign) else f", or move {them} out of {shown_path(folder)}"
    raise ConfigError(f"{flag} {shown_path(folder)} holds {shown}, which nothing shows an earlier mixopt {command} wrote "
                      f"({listed}{'; ' + why if why else ''}); it would replace {them}. Write to another {flag} (a new "
                      f"folder, or one an earlier {command} wrote){move}.")
