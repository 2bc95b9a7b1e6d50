"""Read a pool or target for selection: every record with its fields, in input order.

Sources are read like domains (``mixopt.data.sources``): local JSON/JSONL/Parquet/
text files, globs, directories, ``save_to_disk`` folders, or hub ids, through
Hugging Face ``datasets``. Unlike a domain, a selection source keeps all of
each record's fields, since the scored output must give them back unchanged.
"""

from __future__ import annotations

import glob
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DomainSpec
from ..data.sources import (
    load_dataset_of,
    looks_like_hub_id,
    source_key,
    utf8_errors,
    warn_no_text,
)
from ..errors import ConfigError, DataError

NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"


@dataclass
class Source:
    """One pool or target: its records and the text of each (``""`` where a record has none)."""

    name: str
    spec: DomainSpec
    rows: list[dict]  # original records, input order
    texts: list[str]  # rows[i][text_field] when a non-empty string, else ""
    key: str  # content hash of what was read (file bytes + read settings)

    @property
    def has_text(self) -> np.ndarray:
        """(n_rows,) bool: the record has non-empty text."""
        return np.fromiter((bool(t.strip()) for t in self.texts), dtype=bool, count=len(self.texts))

    @property
    def n_bytes(self) -> int:
        return sum(len(t.encode("utf-8", errors="replace")) for t in self.texts)


def source_spec(name: str, path: str, *, option: str, text_field: str = "text") -> DomainSpec:
    """A spec for a command-line source; a bad name or a missing path names the option to fix."""
    if not name or not re.match(NAME_PATTERN, name):
        raise ConfigError(f"{option} needs NAME=PATH with a NAME of letters, digits, '_', '.', '-'. Got {name!r}. Rename it.")
    p = Path(path).expanduser()
    if not (p.exists() or glob.glob(str(p)) or looks_like_hub_id(path)):
        where = "" if p.is_absolute() else f" (looked for {p.resolve()}; relative paths are read from the working directory)"
        raise DataError(f"{option} {name}={path}: the path does not exist (no file, directory or glob match){where}. "
                        f"Fix the path after {option}.")
    return DomainSpec(name=name, path=path, text_field=text_field)


def _records(spec: DomainSpec, option: str, field_option: str):
    """The records of ``spec`` (its first ``spec.max_documents``, as a domain of it is read) and the ``where`` its
    errors start with; records without the text field are a one-line error that names ``field_option``."""
    where = f"{option} {spec.name}={spec.path}"
    ds = load_dataset_of(spec, where)
    if spec.text_field not in ds.column_names:
        raise DataError(f"{where}: records must have a '{spec.text_field}' field holding the text; the fields are "
                        f"{ds.column_names}. {_text_field_fix(option, field_option)}")
    if spec.max_documents is not None and len(ds) > spec.max_documents:
        ds = ds.select(range(spec.max_documents))
    return ds, where


def _check_text(where: str, spec: DomainSpec, values: list, said: str, option: str, field_option: str) -> None:
    """``values`` (the text field of each record read) hold some text, else a one-line error; records without text are
    counted in a warning saying what becomes of them (``said``)."""
    if not any(isinstance(t, str) and t.strip() for t in values):
        raise DataError(f"{where}: holds no document with non-empty '{spec.text_field}' ({len(values)} records). "
                        f"Give a file with text, or {_text_field_option(option, field_option)}.")
    warn_no_text(where, spec, values, said, _no_text_fix(option, field_option))


def read_source(spec: DomainSpec, *, option: str, field_option: str = "--text-field") -> Source:
    """All records of ``spec`` and their texts; an empty source or a missing text field is a one-line error that
    names ``field_option``, the option that sets this source's text field (``--target-text-field`` for select's target)."""
    ds, where = _records(spec, option, field_option)
    with utf8_errors(where, spec):  # the text is decoded here, not when the file is read
        rows = ds.to_list()
    values = [r.get(spec.text_field) for r in rows]
    if "pool" in option:  # a pool's records without text are written back (score null), the target's are left out
        said = "they are not scored: the scored output keeps them with a null score, in no bucket"
    else:
        said = "they are left out"
    _check_text(where, spec, values, said, option, field_option)
    texts = [t if isinstance(t, str) else "" for t in values]
    key = source_key(spec) if _local(spec) else hashlib.sha256(repr(spec.model_dump()).encode()).hexdigest()[:20]
    return Source(spec.name, spec, rows, texts, key)


def _local(spec: DomainSpec) -> bool:
    return not (spec.format == "hub" or (not Path(spec.path).expanduser().exists() and not glob.glob(spec.path)))


def text_keys(texts: list[str], *, unique: bool = True) -> set[bytes] | list[bytes]:
    """A digest of each non-empty text (a set, or a list with one entry per text when not ``unique``)."""
    keys = [hashlib.sha1(t.encode("utf-8", "replace")).digest() for t in texts if t.strip()]
    return set(keys) if unique else keys


@dataclass
class TextSample:
    """The non-empty texts of ``n_read`` records read from a source of ``n_records`` (all of them, or a sample)."""

    texts: list[str]
    n_read: int  # records read (with or without text)
    n_records: int  # records in the whole source

    @property
    def sampled(self) -> bool:
        return self.n_read < self.n_records

    @property
    def documents_estimate(self) -> float:
        """Documents with text in the whole source: exact when all was read, else the sample's share scaled up."""
        return len(self.texts) * self.n_records / self.n_read if self.sampled else float(len(self.texts))


def read_texts(spec: DomainSpec, *, option: str, max_documents: int | None = None, seed: int | None = None,
               field_option: str = "--text-field") -> list[str]:
    """The non-empty texts of ``max_documents`` records, with errors that name ``option`` and ``field_option``.

    With a ``seed`` the records are a seeded uniform sample of the whole source, in source order (a file sorted
    by topic or source is then represented whole, not by its head); without one, the first ``max_documents``.
    """
    return read_sample(spec, option=option, max_documents=max_documents, seed=seed, field_option=field_option).texts


def read_sample(spec: DomainSpec, *, option: str, max_documents: int | None = None, seed: int | None = None,
                field_option: str = "--text-field") -> TextSample:
    """:func:`read_texts` with the counts of records read and in the source (to scale what the sample measures); a
    spec's ``max_documents`` (a config's domain) makes the source its first records, as the domain is read."""
    ds, where = _records(spec, option, field_option)
    n_records = len(ds)
    if max_documents is not None and len(ds) > max_documents:
        ds = ds.select(range(max_documents) if seed is None
                       else np.sort(np.random.default_rng(seed).choice(len(ds), max_documents, replace=False)))
    with utf8_errors(where, spec):  # the text is decoded here (a lazy column, hence list), not when the file is read
        values = list(ds[spec.text_field])
    _check_text(where, spec, values, "they are left out", option, field_option)
    return TextSample([t for t in values if isinstance(t, str) and t.strip()], len(values), n_records)


def _text_field_option(option: str, field_option: str) -> str:
    """What sets the text field of a source read for ``option``: a config's domain its `text_field`, else ``field_option``."""
    if option == "--config":
        return "set the domain's `text_field` in the config"
    return f"pass {field_option} with the field that holds the text"


def _text_field_fix(option: str, field_option: str) -> str:
    fix = _text_field_option(option, field_option)
    return fix[0].upper() + fix[1:] + "."


def _no_text_fix(option: str, field_option: str = "--text-field") -> str:
    """The fix for records without text: a config's domain sets ``text_field``, a command-line source ``field_option``."""
    if option == "--config":
        return "Set the domain's `text_field` in the config to the field that holds their text, or remove those records"
    return f"Pass {field_option} with the field that holds their text, or remove those records"
