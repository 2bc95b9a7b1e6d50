"""Read the documents of a domain through Hugging Face ``datasets``.

Local JSON/JSONL/Parquet/text files and globs go through ``load_dataset``;
directories written by ``Dataset.save_to_disk`` through ``load_from_disk``; any
other string is treated as a hub id (needs network, never used in tests).
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import DomainSpec
from ..errors import DataError
from .embedded import EMBEDDED_DIR

_EXT_FORMAT = {
    ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json",
    ".parquet": "parquet", ".txt": "text", ".text": "text", ".md": "text", ".txt.gz": "text",
}
_BUILDER = {"jsonl": "json", "json": "json", "parquet": "parquet", "text": "text"}  # format -> datasets builder


def resolve_files(spec: DomainSpec) -> list[Path]:
    """Local files a spec points at (empty for hub ids and saved datasets)."""
    p = Path(spec.path).expanduser()
    if spec.format in ("hub",):
        return []
    if p.is_file():
        return [p]
    if p.is_dir():
        if _is_saved_dataset(p):
            return sorted(f for f in p.rglob("*") if f.is_file())
        files = sorted(f for f in p.rglob("*") if f.is_file() and _format_of(f) is not None)
        if not files:
            raise DataError(f"Domain '{spec.name}': directory {p} holds no .jsonl/.json/.parquet/.txt files. Point `path` at the data files.")
        return files
    matches = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
    if matches:
        return matches
    if spec.format == "auto" and looks_like_hub_id(spec.path):
        return []
    raise DataError(f"Domain '{spec.name}': data path {spec.path} does not exist. Fix the path in the config (or set format: hub for a hub id).")


def source_key(spec: DomainSpec) -> str:
    """A content hash of what the spec reads: file names and bytes for local data (not where they lie, so the same
    files in another checkout or folder give the same key), the id for hub data, and the spec's fields that decide
    which documents are read (:func:`_key_fields`)."""
    return source_keys(spec)[0]


def source_keys(spec: DomainSpec) -> tuple[str, str, str]:
    """(key, legacy keys): the key, then the keys older mixopt made, which the data fingerprints of stores written
    then were made from (``DomainSet.adopt``): before stop 23 every field as written and the spec's path; before
    stop 29 every field as written. All three come from one read of the files."""
    files = resolve_files(spec)
    fields = spec.model_dump(exclude={"name", "path"} if files else {"name"})
    h, legacy, verbatim = (hashlib.sha256(json.dumps(f, sort_keys=True).encode())
                           for f in (_key_fields(spec, files), spec.model_dump(exclude={"name"}), fields))
    for f in files:
        for x in (h, legacy, verbatim):
            x.update(str(f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                for x in (h, legacy, verbatim):
                    x.update(chunk)
    return h.hexdigest()[:20], legacy.hexdigest()[:20], verbatim.hexdigest()[:20]


def _key_fields(spec: DomainSpec, files: list[Path]) -> dict:
    """The spec's fields as its source key hashes them (``files``: :func:`resolve_files`; local data leaves out the
    path). Fields that do not change which documents are read are set to their defaults, so editing them keeps the
    key, and a spec that leaves them at their defaults hashes as before stop 29: ``quality_field`` (it only cuts
    quality pools) and, for local files, ``hub_config``, ``split`` (read only from a saved DatasetDict) and a
    ``format`` that reads the files as ``auto`` does. The embedded corpus's files take the ``jsonl`` that
    ``domain_specs`` has always given them, so its fingerprints stay as they were. The price: the same bytes under the
    same spec key differently inside the embedded folder and in a copy elsewhere, and a spec that points at an embedded
    file with ``format: auto`` (or a copy with ``format: jsonl``) keys differently than before stop 29 (its stores are
    adopted through the verbatim key; its token cache is rebuilt once)."""
    defaults = {k: f.default for k, f in DomainSpec.model_fields.items()}
    fields = spec.model_dump(exclude={"name", "path"} if files else {"name"})
    fields["quality_field"] = defaults["quality_field"]
    if files:
        read = _reader(spec, spec.format, files)
        fields["hub_config"] = defaults["hub_config"]
        if read != "disk":
            fields["split"] = defaults["split"]
        if read is not None and read == _reader(spec, "auto", files):
            fields["format"] = "jsonl" if all(f.resolve().parent == EMBEDDED_DIR for f in files) else defaults["format"]
    return fields


def _reader(spec: DomainSpec, fmt: str, files: list[Path]) -> str | None:
    """How :func:`load_dataset_of` reads the local ``files`` of ``spec`` under format ``fmt``: "disk" (a saved dataset)
    or a ``datasets`` builder; None when ``auto`` cannot tell."""
    path = Path(spec.path).expanduser()
    if fmt == "disk" or (fmt == "auto" and path.is_dir() and _is_saved_dataset(path)):
        return "disk"
    if fmt == "auto":
        kinds = {_format_of(f) for f in files}
        return kinds.pop() if len(kinds) == 1 else None
    return _BUILDER.get(fmt)


def load_documents(spec: DomainSpec, max_documents: int | None = None) -> list[str]:
    """All non-empty documents of a domain, in source order."""
    ds = load_dataset_of(spec)
    column = spec.text_field
    if column not in ds.column_names:
        raise DataError(
            f"Domain '{spec.name}': {spec.path} has no '{column}' column (columns: {ds.column_names}). "
            f"Set `text_field` to the column that holds the text."
        )
    limit = min(x for x in (max_documents, spec.max_documents, len(ds)) if x is not None)
    docs = [t for t in ds.select(range(limit))[column] if isinstance(t, str) and t.strip()]
    if not docs:
        raise DataError(f"Domain '{spec.name}': {spec.path} contains no non-empty documents in column '{column}'. Check the file or the text_field.")
    return docs


def load_column(spec: DomainSpec, column: str, max_documents: int | None = None) -> list:
    """Another column of the same rows as `load_documents` (e.g. a quality score)."""
    ds = load_dataset_of(spec)
    if column not in ds.column_names:
        raise DataError(f"Domain '{spec.name}': no column '{column}' in {spec.path} (columns: {ds.column_names}). Fix quality_field.")
    limit = min(x for x in (max_documents, spec.max_documents, len(ds)) if x is not None)
    rows = ds.select(range(limit))
    return [v for t, v in zip(rows[spec.text_field], rows[column]) if isinstance(t, str) and t.strip()]


class _Collect(logging.Handler):
    """Keeps the messages `datasets` logs while it reads (a parse error's row and cause), instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _datasets_log() -> Iterator[list[str]]:
    """Route the `datasets` library's log records into a list for the duration (errors stay one line)."""
    lib = logging.getLogger("datasets")
    handlers, propagate, keep = lib.handlers[:], lib.propagate, _Collect()
    lib.handlers, lib.propagate = [keep], False
    try:
        yield keep.messages
    finally:
        lib.handlers, lib.propagate = handlers, propagate


def load_dataset_of(spec: DomainSpec):
    import datasets  # noqa: F401  first, so its own logging setup happens before the log is routed

    with _datasets_log() as logged:
        return _load_dataset_of(spec, logged)


def _load_dataset_of(spec: DomainSpec, logged: list[str]):
    import datasets

    datasets.disable_progress_bars()
    fmt = spec.format
    files = resolve_files(spec)
    path = Path(spec.path).expanduser()
    try:
        if fmt == "disk" or (fmt == "auto" and path.is_dir() and _is_saved_dataset(path)):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if spec.split not in ds:
                    raise DataError(f"Domain '{spec.name}': saved dataset has splits {list(ds)}, not '{spec.split}'. Set `split`.")
                ds = ds[spec.split]
            return ds
        if fmt == "hub" or (fmt == "auto" and not files):
            return datasets.load_dataset(spec.path, spec.hub_config, split=spec.split)
        if fmt == "auto":
            kinds = {_format_of(f) for f in files}
            if None in kinds or len(kinds) != 1:
                raise DataError(f"Domain '{spec.name}': cannot tell the format of {spec.path} (found {sorted(map(str, kinds))}). Set `format` to jsonl, parquet or text.")
            fmt = kinds.pop()
        builder = _BUILDER[fmt]
        for f in files:
            if os.path.getsize(f) == 0:
                raise DataError(f"Domain '{spec.name}': data file {f} is empty. Remove it or fill it.")
        kwargs = {"sample_by": "paragraph"} if builder == "text" else {}
        return datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", **kwargs)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types for corrupt input
        msg = " ".join((logged[-1] if logged else str(exc)).split())[:300]  # the library's log names the row and cause
        raise DataError(f"Domain '{spec.name}': could not read {spec.path} ({type(exc).__name__}: {msg}). Check that the file is valid {fmt} and not truncated.") from None


def _format_of(f: Path) -> str | None:
    name = f.name.lower()
    for ext in sorted(_EXT_FORMAT, key=len, reverse=True):
        if name.endswith(ext):
            return _EXT_FORMAT[ext]
    return None


def _is_saved_dataset(p: Path) -> bool:
    return (p / "dataset_info.json").exists() or (p / "state.json").exists() or (p / "dataset_dict.json").exists()


def names_local_data(path: str) -> bool:
    """Whether ``path`` names local data here: a file or folder that exists, or a glob that matches one."""
    p = Path(path).expanduser()
    return p.exists() or bool(glob.glob(str(p)))


def looks_like_hub_id(s: str) -> bool:
    return "/" in s and not s.startswith((".", "/", "~")) and Path(s).suffix == "" and s.count("/") == 1
