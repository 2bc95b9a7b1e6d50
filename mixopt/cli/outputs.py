"""Output paths checked before a command does any work: nothing an input was read from is overwritten, and a path
that cannot be written (its nearest existing folder is read-only or not writable) fails in one line up front, not as a
traceback after the work (or half of the outputs). A full disk still shows only when the output is written: that write
is atomic (io.atomic_write_*), so it fails in one line and the previous file stays as it was."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError


def check_output(path: Path, flag: str, *, inputs: Mapping[str, Path | None] | None = None,
                 folder: bool | None = False) -> None:
    """Refuse ``path`` (given as ``flag``) when it is one of ``inputs`` (``{what: path}``), when it is a folder where a
    file goes (``folder=False``) or a file where a folder goes (``folder=True``; None: either), when one of its
    parents is a file, or when the nearest folder of it that exists cannot be written into."""
    p = Path(path)
    for what, src in (inputs or {}).items():
        if src is not None and Path(src).exists() and p.resolve() == Path(src).resolve():
            raise ConfigError(f"{flag} {p} is the {what} this command reads; write to another path.")
    if folder and p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} is a file, not a folder. Give a folder path (it is created if absent).")
    if folder is False and p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; give a file path, e.g. {p / 'NAME'}.")
    # the nearest folder that exists is where the missing ones are created, or the output is written (renamed) into
    for parent in ([p] if folder is not False and p.is_dir() else []) + list(p.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {p}: {parent} is a file, not a folder. Pick another path.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag} {p} cannot be written: {parent} is {_why_not_writable(parent)}. "
                                  "Pick a path in a writable folder.")
            break


def _why_not_writable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except (OSError, AttributeError):
        pass
    return "not writable for this user"
