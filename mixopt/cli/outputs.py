"""Output paths checked before a command does any work: nothing an input was read from is overwritten, and a path
that cannot be written fails in one line up front, not as a traceback after the work (or half of the outputs)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError


def check_output(path: Path, flag: str, *, inputs: Mapping[str, Path | None] | None = None,
                 folder: bool | None = False) -> None:
    """Refuse ``path`` (given as ``flag``) when it is one of ``inputs`` (``{what: path}``), when it is a folder where a
    file goes (``folder=False``) or a file where a folder goes (``folder=True``; None: either), or when one of its
    parents is a file."""
    p = Path(path)
    for what, src in (inputs or {}).items():
        if src is not None and Path(src).exists() and p.resolve() == Path(src).resolve():
            raise ConfigError(f"{flag} {p} is the {what} this command reads; write to another path.")
    if folder and p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} is a file, not a folder. Give a folder path (it is created if absent).")
    if folder is False and p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; give a file path, e.g. {p / 'NAME'}.")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {p}: {parent} is a file, not a folder. Pick another path.")
            break
