"""Small file helpers shared by the store, plans and exporters."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import StoreError


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (temp file + fsync + rename)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"Cannot write {path}: {exc.strerror or exc}. Check that the directory is writable and the disk has space.") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StoreError(f"Cannot write {path}: {exc.strerror or exc}. Check that the directory is writable and the disk has space.") from None
    return path


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_yaml(path: Path, *, what: str, missing_hint: str, fix_hint: str = "Fix the syntax."):
    """Parse a YAML file; a missing, non-UTF-8 or broken file is a one-line ConfigError."""
    import yaml

    from .errors import ConfigError

    path = Path(path)
    shown = shown_path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {shown} does not exist. {missing_hint}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {shown} is not valid YAML ({' '.join(str(exc).split())}). {fix_hint}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {shown} is not UTF-8 text. Save it as UTF-8 YAML.") from None


def shown_path(path: str | Path) -> str:
    """A path as errors print it: as is, or quoted with escapes when it holds line breaks or control characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)
