"""Read the documents of a domain through Hugging Face ``datasets``.

Local JSON/JSONL/Parquet/text files and globs go through ``load_dataset``;
directories written by ``Dataset.save_to_disk`` through ``load_from_disk``; any
other string is treated as a hub id (needs network, never used in tests).
"""

from __future__ import annotations

import filecmp
import glob
import gzip
import hashlib
import json
import logging
import os
import re
import warnings
from collections import Counter
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
#: Endings of compressed files: mixopt reads .gz; .zst, .bz2 and .xz are how published corpora ship (RedPajama, the Pile).
COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2", ".xz")
#: Endings of a file of documents (not a tokenized dataset): the extensions read here, a saved dataset's .arrow shards,
#: and any of those compressed (every compressed file: a tokenized prefix is never compressed).
DOCUMENT_SUFFIXES = tuple(sorted({*_EXT_FORMAT, ".arrow", *COMPRESSION_SUFFIXES}))
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
    raise DataError(f"Domain '{spec.name}': data path {spec.path} does not exist{_resolved_note(spec.path)}. "
                    "Fix the path in the config (or set format: hub for a hub id).")


def _resolved_note(path: str) -> str:
    """For a relative ``path``: where it was looked for, as the relative path alone hides which folder that was."""
    if Path(path).expanduser().is_absolute():
        return ""
    return f" (looked for {Path(path).expanduser().resolve()}; relative paths are read from the working directory {Path.cwd()})"


def source_key(spec: DomainSpec) -> str:
    """A content hash of what the spec reads: file names and bytes for local data (not where they lie, so the same
    files in another checkout or folder give the same key), the id for hub data, and the spec's fields that decide
    which documents are read (:func:`_key_fields`)."""
    return source_keys(spec)[0]


def files_digest(path: str | Path) -> str:
    """A content hash of the local files ``path`` names (a file, folder or glob): :func:`source_key` of a plain spec
    of it, so the file names and bytes, not where they lie. A plan records it for each pool file it counts, to tell
    later whether the file changed; a missing path is a :class:`~mixopt.errors.DataError`."""
    return source_key(DomainSpec(name="file", path=str(path)))


def source_keys(spec: DomainSpec) -> tuple[str, str, str, str]:
    """(key, legacy keys): the key, then the keys older mixopt made, which the data fingerprints of stores written
    then were made from (``DomainSet.adopt``): before stop 23 every field as written and the spec's path; before
    stop 29 every field as written; and the key mixopt before stop 38 gave the embedded corpus's own files
    (:func:`_embedded_fields`), for those files and for byte-for-byte copies of them elsewhere (so a copy matches a
    store swept on the embedded corpus), the key itself for any other data. All four come from one read of the files."""
    files = resolve_files(spec)
    fields = spec.model_dump(exclude={"name", "path"} if files else {"name"})
    key_fields = _key_fields(spec, files)
    hashers = [hashlib.sha256(json.dumps(f, sort_keys=True).encode()) for f in
               (key_fields, spec.model_dump(exclude={"name"}), fields, _embedded_fields(spec, files, key_fields) or key_fields)]
    for f in files:
        for x in hashers:
            x.update(str(f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                for x in hashers:
                    x.update(chunk)
    if files and _reader(spec, spec.format, files) == "text" and any(map(_has_whitespace_line, files)):
        # lines of spaces split documents (older mixopt kept the paragraphs around them as one): other documents,
        # other keys. Files without such a line hash as before, so their caches and stores stay valid.
        for x in hashers:
            x.update(b"|lines of spaces split documents")
    key, legacy, verbatim, embedded = (x.hexdigest()[:20] for x in hashers)
    return key, legacy, verbatim, embedded


def _key_fields(spec: DomainSpec, files: list[Path]) -> dict:
    """The spec's fields as its source key hashes them (``files``: :func:`resolve_files`; local data leaves out the
    path). Fields that do not change which documents are read are set to their defaults, so editing them keeps the
    key, and a spec that leaves them at their defaults hashes as before stop 29: ``quality_field`` (it only cuts
    quality pools) and, for local files, ``hub_config``, ``split`` (read only from a saved DatasetDict) and a
    ``format`` that reads the files as ``auto`` does. The embedded corpus's files are keyed like any other local file,
    so a byte-for-byte copy of one (same name, same bytes) elsewhere has the same key; before stop 38 they were keyed
    with the ``jsonl`` that ``domain_specs`` gives them, and that key is kept as a legacy one (:func:`_embedded_fields`)
    so stores swept on the embedded corpus, or reusing one, still match."""
    defaults = {k: f.default for k, f in DomainSpec.model_fields.items()}
    fields = spec.model_dump(exclude={"name", "path"} if files else {"name"})
    fields["quality_field"] = defaults["quality_field"]
    if files:
        read = _reader(spec, spec.format, files)
        fields["hub_config"] = defaults["hub_config"]
        if read != "disk":
            fields["split"] = defaults["split"]
        if read is not None and read == _reader(spec, "auto", files):
            fields["format"] = defaults["format"]
    return fields


def _embedded_fields(spec: DomainSpec, files: list[Path], key_fields: dict) -> dict | None:
    """The fields mixopt before stop 38 keyed ``files`` with had they been the embedded corpus's own (``format:
    jsonl``), when they are that corpus's files or byte-for-byte copies of them (same names, same bytes) read as
    ``auto`` reads them; None otherwise (also for a copy read another way, which keyed differently then too)."""
    if not files or key_fields.get("format") != "auto" or _reader(spec, "auto", files) != "json":
        return None
    if not all(_same_as_embedded(f) for f in files):
        return None
    return {**key_fields, "format": "jsonl"}


def _same_as_embedded(f: Path) -> bool:
    """Whether ``f`` is one of the embedded corpus's files, or holds the same name and bytes as one."""
    twin = EMBEDDED_DIR / f.name
    if f.resolve().parent == EMBEDDED_DIR:
        return True
    try:
        return twin.is_file() and twin.stat().st_size == f.stat().st_size and filecmp.cmp(f, twin, shallow=False)
    except OSError:
        return False


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
    where = f"Domain '{spec.name}'"
    with utf8_errors(where, spec):  # the text is decoded here (a lazy column, hence list), not when the file is read
        values = list(ds.select(range(limit))[column])
    docs = [t for t in values if isinstance(t, str) and t.strip()]
    if not docs:
        raise DataError(f"Domain '{spec.name}': {spec.path} contains no non-empty documents in column '{column}'. Check the file or the text_field.")
    warn_no_text(where, spec, values, "they are left out",
                 "Set `text_field` to the field that holds their text, or remove those records")
    return docs


def warn_no_text(where: str, spec: DomainSpec, values: list, consequence: str, fix: str) -> None:
    """Warn (one line) when some of ``values`` (a source's text field, one per record) hold no text, so that records
    are never dropped unsaid: how many of how many, why, what becomes of them (``consequence``) and ``fix``."""
    if _is_text_read(spec):  # a text file's records are its paragraphs: none is a record without text
        return
    kinds = Counter("missing or null" if v is None else "empty" if isinstance(v, str) else "not a string"
                    for v in values if not (isinstance(v, str) and v.strip()))
    if kinds:
        why = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        warnings.warn(f"{where}: {sum(kinds.values())} of {len(values)} records in {spec.path} have no text in "
                      f"'{spec.text_field}' ({why}); {consequence}. {fix}.", stacklevel=3)


def _is_text_read(spec: DomainSpec) -> bool:
    """Whether ``spec`` is read as plain text (one record per paragraph)."""
    try:
        return _reader(spec, spec.format, resolve_files(spec)) == "text"
    except DataError:
        return False


@contextmanager
def utf8_errors(where: str, spec: DomainSpec) -> Iterator[None]:
    """Turn the UnicodeDecodeError of text that is not UTF-8 (``datasets`` decodes JSON and Parquet strings only when
    they are taken out of the dataset) into a one-line error that names the file and how to re-encode it."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise not_utf8(where, spec, exc) from None


def not_utf8(where: str, spec: DomainSpec, exc: UnicodeDecodeError) -> DataError:
    """The error for ``spec``'s data that is not UTF-8: the first file and line that is not, and the fix."""
    try:
        files = resolve_files(spec)
    except DataError:
        files = []
    for f in files:
        found = _first_not_utf8(f)
        if found:
            line, byte = found
            tmp = f"{f}.utf8"
            fix = (f"zcat {f} | iconv -f latin1 -t utf-8 | gzip > {tmp} && mv {tmp} {f}" if f.name.lower().endswith(".gz")
                   else f"iconv -f latin1 -t utf-8 {f} > {tmp} && mv {tmp} {f}")
            return DataError(f"{where}: {f} is not UTF-8 text (line {line} holds the byte 0x{byte:02x}). Re-encode it to "
                             f"UTF-8, e.g. if it is Latin-1: {fix}")
    return DataError(f"{where}: {spec.path} holds text that is not UTF-8 ({exc.reason}: byte 0x{exc.object[exc.start]:02x}). "
                     f"Re-encode the data to UTF-8 (e.g. with iconv -f latin1 -t utf-8 if it is Latin-1).")


def _first_not_utf8(f: Path) -> tuple[int, int] | None:
    """(1-based line, first bad byte) of the first line of ``f`` that is not UTF-8; None if all are (or ``f`` is
    Parquet, whose lines mean nothing)."""
    if _format_of(f) == "parquet":
        return None
    try:
        with (gzip.open if f.name.lower().endswith(".gz") else open)(f, "rb") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return n, line[exc.start]
    except (OSError, EOFError):  # e.g. a .gz that is not gzip: not this error's cause
        return None
    return None


def load_column(spec: DomainSpec, column: str, max_documents: int | None = None) -> list:
    """Another column of the same rows as `load_documents` (e.g. a quality score)."""
    ds = load_dataset_of(spec)
    if column not in ds.column_names:
        raise DataError(f"Domain '{spec.name}': no column '{column}' in {spec.path} (columns: {ds.column_names}). Fix quality_field.")
    limit = min(x for x in (max_documents, spec.max_documents, len(ds)) if x is not None)
    rows = ds.select(range(limit))
    with utf8_errors(f"Domain '{spec.name}'", spec):
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


def load_dataset_of(spec: DomainSpec, where: str | None = None):
    """The ``datasets.Dataset`` of ``spec``; a file that cannot be read is a one-line DataError that starts with
    ``where`` (default: the domain's name) and gives the library's underlying cause."""
    import datasets  # noqa: F401  first, so its own logging setup happens before the log is routed

    with _datasets_log() as logged:
        return _load_dataset_of(spec, logged, where or f"Domain '{spec.name}'")


def _load_dataset_of(spec: DomainSpec, logged: list[str], where: str):
    import datasets

    datasets.disable_progress_bars()
    fmt = spec.format
    files = resolve_files(spec)
    path = Path(spec.path).expanduser()
    try:
        if fmt == "disk" or (fmt == "auto" and path.is_dir() and _is_saved_dataset(path)):
            fmt = "disk"
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if spec.split not in ds:
                    raise DataError(f"{where}: saved dataset has splits {list(ds)}, not '{spec.split}'. Set `split`.")
                ds = ds[spec.split]
            return ds
        if fmt == "hub" or (fmt == "auto" and not files):
            fmt = "hub"
            return datasets.load_dataset(spec.path, spec.hub_config, split=spec.split)
        if fmt == "auto":
            kinds = {_format_of(f) for f in files}
            if None in kinds or len(kinds) != 1:
                if len(files) == 1:
                    raise DataError(f"{where}: cannot tell the format of {spec.path} from its name. Set `format` to jsonl, "
                                    "parquet or text.")
                raise DataError(f"{where}: cannot tell the format of {spec.path}: it holds {_mix_of(files)}. "
                                f"{_glob_hint(spec, files)}")
            fmt = kinds.pop()
        builder = _BUILDER[fmt]
        for f in files:
            if os.path.getsize(f) == 0:
                raise DataError(f"{where}: data file {f} is empty. Remove it or fill it.")
        kwargs = {"sample_by": "paragraph"} if builder == "text" else {}
        ds = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", **kwargs)
        return _split_at_whitespace_lines(ds) if builder == "text" else ds
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types for corrupt input
        raise _read_error(where, spec, fmt, files, exc, logged) from None


def _read_error(where: str, spec: DomainSpec, fmt: str, files: list[Path], exc: Exception, logged: list[str]) -> DataError:
    """The one-line error for data ``datasets`` failed to read: the underlying cause (``datasets`` wraps it in a
    generic DatasetGenerationError, the real one is down the exception chain) and the fix."""
    chain = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for x in chain:
        if isinstance(x, UnicodeDecodeError):
            return not_utf8(where, spec, x)
    if fmt == "hub":
        return DataError(f"{where}: could not read {spec.path} as a Hugging Face hub dataset ({_first_line(chain[0])}). "
                         "Check the hub id, `hub_config` and `split` and the network, or fix `path` if it is a local path.")
    mixed = f" {_glob_hint(spec, files)}" if len({_ext_of(f) for f in files}) > 1 else ""
    cast = next((x for x in chain if hasattr(x, "table_column_names") and hasattr(x, "requested_column_names")), None)
    if cast is not None and set(cast.table_column_names) != set(cast.requested_column_names):  # datasets' CastError
        return DataError(f"{where}: could not read {spec.path}: its files do not all have the same fields "
                         f"({_fields_differ(files, cast)}). Give every file the same fields, or point `path` at the "
                         f"files of one layout.{mixed}")
    if _BUILDER.get(fmt) == "json":
        bad = _first_bad_json_line(files)
        if bad:  # found by mixopt itself: the line is 1-based, unlike the row number the JSON parser gives
            f, line, why = bad
            return DataError(f"{where}: could not read {spec.path}: line {line} of {f} is not a JSON record ({why}). "
                             f"Fix or remove that line.{mixed}")
    cause = logged[-1] if logged else next((_first_line(x) for x in chain if "error occurred while generating" not in str(x)),
                                           _first_line(chain[0]))  # the library's log names the file and cause
    cause = " ".join(cause.split())[:300]
    what = {"disk": "a dataset saved with save_to_disk", "json": "JSON", "jsonl": "JSONL", "parquet": "Parquet",
            "text": "UTF-8 text"}.get(fmt)
    fix = f"Check that it is valid {what} and not truncated." if what else "Check that it is valid and not truncated."
    return DataError(f"{where}: could not read {spec.path} ({type(chain[0]).__name__}: {cause}). {fix}{mixed}")


def _first_line(exc: BaseException) -> str:
    """``exc``'s type and the first non-empty line of its message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _fields_differ(files: list[Path], cast) -> str:
    """Which files' fields differ, from the first record of each JSONL file; else the fields the cast names."""
    first: dict[Path, list[str]] = {}
    for f in files:
        try:
            with (gzip.open if f.name.lower().endswith(".gz") else open)(f, "rt", encoding="utf-8") as fh:
                line = next((ln for ln in fh if ln.strip()), "")
            rec = json.loads(line)
        except (OSError, EOFError, ValueError):
            continue
        if isinstance(rec, dict):
            first[f] = sorted(rec)
    layouts = list(dict.fromkeys(tuple(v) for v in first.values()))
    if len(layouts) > 1:
        a, b = (next(f for f, v in first.items() if tuple(v) == layout) for layout in layouts[:2])
        return f"{a.name} has {first[a]}, {b.name} has {first[b]}"
    return f"expected {sorted(cast.requested_column_names)}, found {sorted(cast.table_column_names)}"


def _first_bad_json_line(files: list[Path]) -> tuple[Path, int, str] | None:
    """(file, 1-based line, why) of the first JSONL line that is not a JSON object. A ``.json`` file whose first line
    is not one is skipped: it may be one JSON document over many lines, which lines cannot judge."""
    for f in files:
        jsonl = f.name.lower().endswith((".jsonl", ".jsonl.gz"))
        try:
            with (gzip.open if f.name.lower().endswith(".gz") else open)(f, "rt", encoding="utf-8") as fh:
                first = True
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        why = None if isinstance(rec, dict) else f"a JSON {type(rec).__name__}, not an object"
                    except ValueError as exc:
                        why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
                    if why and (jsonl or not first):
                        return f, n, why
                    if why:
                        break  # a .json file that is not one record a line
                    first = False
        except (OSError, EOFError, UnicodeDecodeError):
            continue
    return None


def _ext_of(f: Path) -> str:
    """The extension that decides ``f``'s format (``.jsonl.gz`` whole), else its last suffix."""
    name = f.name.lower()
    return next((ext for ext in sorted(_EXT_FORMAT, key=len, reverse=True) if name.endswith(ext)), f.suffix.lower())


def _mix_of(files: list[Path]) -> str:
    """What kinds of file a folder or glob holds, e.g. ``2 .jsonl files and 1 .md file (README.md)``."""
    by_ext = Counter(_ext_of(f) for f in files)
    parts = []
    for ext, n in by_ext.most_common():
        names = [f.name for f in files if _ext_of(f) == ext]
        parts.append(f"{n} {ext or 'extensionless'} file{'s' if n > 1 else ''}"
                     + (f" ({', '.join(names[:3])}{', ...' if n > 3 else ''})" if n <= 3 else ""))
    return " and ".join(parts)


def _glob_hint(spec: DomainSpec, files: list[Path]) -> str:
    """How to point ``path`` at the data files alone: a glob of the most common extension (``format`` alone would
    read the other files too)."""
    counts = Counter(_ext_of(f) for f in files)
    ext = max(counts, key=lambda e: (counts[e], _EXT_FORMAT.get(e) != "text"))  # on a tie, not the README.md
    root = Path(spec.path).expanduser()
    if root.is_dir():
        depths = {len(f.relative_to(root).parts) for f in files if _ext_of(f) == ext}
        if len(depths) == 1:  # a glob reaches one depth (** is not recursive here)
            pattern = str(Path(spec.path) / Path(*(["*"] * (depths.pop() - 1) + [f"*{ext}"])))
            return f"Point `path` at the data files alone with a glob, e.g. path: {pattern}"
    return f"Point `path` at the data files alone, e.g. with a glob ending in *{ext}, or move the other files out."


def _split_at_whitespace_lines(ds):
    """A text dataset whose paragraphs are also split at lines of spaces or tabs (``datasets`` splits only at empty
    lines); the dataset itself when no paragraph holds such a line, so files without one read exactly as before."""
    import datasets
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(ds.data.column("text"), _WS_LINE)).as_py():
        return ds
    docs = [part for t in ds["text"] for part in re.split(r"\n(?:[ \t]*\n)+", t) if part]
    return datasets.Dataset.from_dict({"text": docs}, features=ds.features)


_WS_LINE = r"\n[ \t]+\n"  # a line of spaces or tabs between two others


def _has_whitespace_line(f: Path) -> bool:
    """Whether text file ``f`` holds a line of only spaces or tabs between two others (any of \\n, \\r\\n and \\r ends a
    line, as in the text builder's universal newlines); read in chunks, the tail of each carried into the next."""
    pattern, tail = re.compile(rb"[\r\n][ \t]+[\r\n]"), b""
    try:
        with (gzip.open if f.name.lower().endswith(".gz") else open)(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                block = tail + chunk
                if pattern.search(block):
                    return True
                cut = max(block.rfind(b"\n"), block.rfind(b"\r"))
                tail = block[cut:] if cut >= 0 else b""
    except (OSError, EOFError):
        return False
    return False


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
    """Whether ``s`` reads as a hub id (``owner/name``) and not as a local path. A path whose first part exists here
    (``data/docz`` beside a ``data/`` folder) is a local path with a typo, not a hub id: its error comes at once,
    without minutes of network retries."""
    return ("/" in s and not s.startswith((".", "/", "~")) and Path(s).suffix == "" and s.count("/") == 1
            and not Path(s.split("/")[0]).exists())
