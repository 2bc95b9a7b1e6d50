"""Write an export to disk whole or not at all: the one place export files are written.

`write_export` renders the plan (every check runs before anything touches the
disk), checks that ``out`` is the kind of path the format writes (a directory for
multi-file formats, a file otherwise), then writes:

* a single-file format with `io.atomic_write_text` (temp file + rename);
* a multi-file format with `io.atomic_write_files`: all files are staged first and
  swapped in by rename, and a failure part-way puts the previous export back byte
  for byte.

Files a plan with fewer phases leaves behind (``phase_*`` from an earlier, longer
export) are not deleted; they are returned in `ExportResult.stale`, and
`ExportResult.warning` says so in one line. A format's note on the paths given (megatron: document files where it
reads ``.bin``/``.idx`` prefixes) is `ExportResult.path_warning`; `ExportResult.warnings` has both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..io import atomic_write_files, atomic_write_text, shown_path
from ..plan import Plan
from .registry import Exporter, get_exporter
from .spec import ExportOptions, prepare


@dataclass(frozen=True)
class ExportResult:
    fmt: str
    out: Path  # the directory (multi-file formats) or the file written
    files: tuple[Path, ...]  # every file written, in the format's order
    stale: tuple[Path, ...]  # phase_* files in `out` left by an earlier export (not written, not deleted)
    path_warning: str | None = None  # the format's note on the paths given (`Exporter.path_note`), or None

    @property
    def warning(self) -> str | None:
        """One line about stale phase files, or None when there are none."""
        if not self.stale:
            return None
        names = ", ".join(p.name for p in self.stale)
        return f"{shown_path(self.out)} also holds {names} from an earlier export; delete them so no trainer reads them."

    @property
    def warnings(self) -> list[str]:
        """Every one-line warning of the export: stale phase files, then the paths' note."""
        return [w for w in (self.warning, self.path_warning) if w]


def export_target(fmt: str, directory: str | Path) -> Path:
    """Where `write_export` should write ``fmt`` under ``directory``: the directory itself, or its usual file name."""
    exporter = get_exporter(fmt)
    directory = Path(directory)
    return directory if exporter.multi_file else directory / exporter.file_name


def write_export(
    plan: Plan | Mapping[str, Any],
    fmt: str,
    out: str | Path,
    paths: Mapping[str, str] | None = None,
    tokens_per_doc: Mapping[str, float] | None = None,
    options: ExportOptions | None = None,
) -> ExportResult:
    """Render ``plan`` as ``fmt`` and write it to ``out``, whole or not at all.

    ``out`` is a directory for multi-file formats and the file itself otherwise
    (`export_target` gives the usual choice); a string ending in ``/`` names a directory, which a single-file format
    refuses as it refuses an existing one. Raises `ExportError` for bad input or
    a wrong kind of ``out`` (nothing written), `StoreError` when the disk refuses a
    write (the previous export is left as it was).
    """
    exporter = get_exporter(fmt)
    slashed = isinstance(out, str) and out.endswith(("/", os.sep))  # `--out ex/nanodir/`: a folder, existing or not
    out = Path(out)
    check_out(out, fmt, exporter, folder=slashed)
    spec = prepare(plan, fmt, exporter.semantics, paths, tokens_per_doc, options)  # `export_plan`, keeping the spec
    files = exporter.render(spec)
    note = exporter.path_note(spec.paths) if exporter.path_note else None
    if not exporter.multi_file:
        (text,) = files.values()
        return ExportResult(fmt=fmt, out=out, files=(atomic_write_text(out, text),), stale=(), path_warning=note)
    written = tuple(atomic_write_files(out, files))
    stale = tuple(sorted(p for p in out.glob("phase_*") if p.name not in files))
    return ExportResult(fmt=fmt, out=out, files=written, stale=stale, path_warning=note)


def check_out(out: Path, fmt: str, exporter: Exporter, *, folder: bool = False) -> None:
    """``out`` must be a directory path for multi-file formats and a file path otherwise (``folder``: it was given
    with a trailing ``/``, so it names a directory even where none exists yet)."""
    shown = shown_path(out)
    if exporter.multi_file:
        if out.exists() and not out.is_dir():
            raise ExportError(
                f"--out must be a directory for format '{fmt}' (it writes several files). Got the existing file {shown}. "
                "Pass a directory path."
            )
        if not out.exists() and _looks_like_file(out):
            raise ExportError(
                f"--out must be a directory for format '{fmt}' (it writes several files). Got {shown}, a file name "
                f"ending in '{out.suffix}'. Pass a directory such as {shown_path(out.with_suffix(''))} "
                "(or create the directory first if that name is meant)."
            )
        return
    if out.is_dir() or folder:
        raise ExportError(
            f"--out must be a file path for format '{fmt}' (it writes one file). Got the directory {shown}"
            f"{'' if out.is_dir() else '/'}. Pass e.g. {shown_path(out / exporter.file_name)}."
        )


def _looks_like_file(path: Path) -> bool:
    """A name with a file-type suffix such as ``.json`` or ``.yaml`` (not ``v1.2``)."""
    suffix = path.suffix[1:]
    return bool(suffix) and suffix.isalnum() and not suffix.isdigit() and len(suffix) <= 8
