"""Write a selection: scored records, equal-token score buckets, and ``pools.yaml``.

Files of one call, for each pool NAME:

- ``NAME.scored.jsonl``: every input record, fields unchanged, plus its score
  (``null`` for records without text), in input order. The score goes under
  ``score``; when an input record already has a field of that name (e.g. a
  pool that is itself an earlier selection's output), under the first of
  ``mixopt_score``, ``mixopt_score_2``, ... that none has (`score_field`),
  so no input field is overwritten; ``selection.json`` names it (``score_field``);
- ``NAME.q1.jsonl`` ... ``NAME.qK.jsonl``: the records of each score bucket
  (equal token shares, ``q1`` best), in input order;
- ``NAME.kept.jsonl``: the records ``--keep`` selected, when asked;
- ``pools.yaml``: ``{NAME: {pools: [{name: q1, path: NAME.q1.jsonl, text_field: ...}, ...]}}``, the
  ``propose.pools`` format, so that `propose` reads the buckets directly (with the pools' own text field,
  whatever the domain's is); paths are relative to ``pools.yaml`` (`located_pools` reads them), so the folder can
  be moved or shared;
- ``selection.json``: what was run (method, settings, key, counts).

Everything is written into a staging folder first and moved in at the end,
``selection.json`` first and ``pools.yaml`` last, so a kill part way leaves no partial output.
`check_out` refuses, before any work, an output folder where the selection would overwrite or delete a file it
reads, one holding a file it reads, one inside a folder it reads, or a file that no selection wrote there.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath

import numpy as np
import yaml

from ..config import DomainSpec
from ..data.sources import looks_like_hub_id, names_local_data, resolve_files
from ..errors import ConfigError, StoreError

MANIFEST = "selection.json"
POOLS_FILE = "pools.yaml"
SCORE_FIELD = "score"


def bucket_of(scores: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Bucket index of each item (0 = best), ``k`` buckets of about equal total ``sizes``; -1 for NaN scores.

    Items are ranked by score, highest first (ties keep input order); an item
    goes to the bucket where the middle of its running size falls (cuts at
    ``j * total / k``), and every bucket gets at least one item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    n = int(ok.sum())
    if not 1 <= k <= n:
        raise ConfigError(f"--buckets must be between 1 and the number of scored documents ({n}). Got {k}. Lower --buckets.")
    order = np.flatnonzero(ok)[np.argsort(-scores[ok], kind="stable")]
    ranked = np.asarray(sizes, dtype=np.float64)[order]
    ends = np.cumsum(ranked)
    mid = ends - ranked / 2  # an item belongs where the middle of its tokens falls
    cuts = np.searchsorted(mid, np.arange(1, k) * ends[-1] / k, side="left")  # first rank of bucket j
    j = np.arange(1, k)
    # strictly increasing cuts in [j, n - k + j], so every bucket gets at least one item: shift by j, clip to
    # [0, n - k], make non-decreasing, shift back (the same cuts as before wherever they were already strictly increasing)
    cuts = np.maximum.accumulate(np.clip(cuts - j, 0, n - k)) + j if k > 1 else cuts
    rank_bucket = np.searchsorted(cuts, np.arange(n), side="right")
    out = np.full(scores.shape[0], -1, dtype=np.int64)
    out[order] = rank_bucket
    return out


def score_field(pools) -> str:
    """The field the scores are written under: ``score``, else the first of ``mixopt_score``, ``mixopt_score_2``, ...
    that no record of ``pools`` (:class:`~mixopt.selection.read.Source`) has, so no input field is overwritten."""
    used = {k for src in pools for r in src.rows for k in r}
    candidates = [SCORE_FIELD, "mixopt_score"] + [f"mixopt_score_{i}" for i in range(2, len(used) + 3)]
    return next(c for c in candidates if c not in used)


def output_names(pools: Iterable[str], buckets: int, keep: bool) -> set[str]:
    """The names of the files a selection of ``pools`` with ``buckets`` (and ``--keep``) writes."""
    names = {MANIFEST, POOLS_FILE}
    for name in pools:
        names |= {f"{name}.scored.jsonl", *(f"{name}.q{j}.jsonl" for j in range(1, buckets + 1))}
        names |= {f"{name}.kept.jsonl"} if keep else set()
    return names


def check_out(out_dir: Path, inputs: Mapping[str, DomainSpec], writes: set[str]) -> None:
    """Refuse ``out_dir`` (``--out``) before any work where the selection that writes the files ``writes`` would lose data.

    ``inputs`` maps each option (``--pool web``, ``--target``) to its spec. Refused: ``out_dir`` inside (or equal to)
    a folder an input reads (folders are read recursively, so the next run would read its own outputs); a glob input
    that matches a file the selection writes; an input file in ``out_dir`` (the selection would overwrite or delete it,
    or be mixed into the data: a later run, or a config, reading that folder would read the selection); and a file the selection writes that is already there but no selection wrote (a
    hand-written ``pools.yaml``, or a ``selection.json`` without a selection's key). An earlier selection's own
    files are replaced, as before.
    """
    out = Path(out_dir).expanduser()
    final = out.resolve()
    owned = _owned(final)
    for what, spec in inputs.items():
        src = Path(spec.path).expanduser()
        if src.is_dir() and (final == src.resolve() or src.resolve() in final.parents):
            raise ConfigError(f"--out {out} lies inside the folder {spec.path} that {what} reads (with its subfolders), so "
                              f"a later run would read the selection as {what} documents. Write to a folder outside {spec.path}.")
        if not src.exists():  # a glob (or a hub id, which matches nothing here)
            pattern = os.path.abspath(src)
            hit = sorted(n for n in writes if PurePath(os.path.abspath(out / n)).match(pattern))
            if hit:
                raise ConfigError(f"--out {out}: the selection's {hit[0]} matches {spec.path}, which {what} reads, so a later "
                                  f"run would read the selection as {what} documents. Write to another --out.")
        for f in resolve_files(spec) if not src.is_dir() else []:
            real = f.resolve()
            if real.parent == final:  # its own folder: not mixed into the data, where a folder input would read it
                why = ("the selection would overwrite or delete it" if real.name in writes or real.name in owned
                       else "the selection would be written among the data it reads")
                raise ConfigError(f"--out {out} holds {f}, which {what} reads; {why}. Write to another --out (a folder "
                                  "of the selection's own).")
    foreign = sorted(n for n in writes if (final / n).exists() and n not in owned)
    if foreign:
        raise ConfigError(f"--out {out} holds {foreign[0]}, which mixopt select did not write; the selection would replace "
                          f"it. Write to another --out, or move {foreign[0]} away.")


def _owned(folder: Path) -> set[str]:
    """Names of the files an earlier selection wrote into ``folder`` (per its manifest); none without a selection's manifest."""
    if not earlier_pools(folder):
        return set()
    return {MANIFEST, POOLS_FILE} | {f.name for f in _earlier_files(folder, set())}


def _jsonl(rows, scores=None, field: str = SCORE_FIELD) -> bytes:
    lines = []
    for i, r in enumerate(rows):
        rec = dict(r)
        if scores is not None:
            s = float(scores[i])
            rec[field] = s if math.isfinite(s) else None
        lines.append(json.dumps(rec, ensure_ascii=False, default=str))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def write_selection(out_dir: Path, pools: list, scores: dict[str, np.ndarray], buckets: dict[str, np.ndarray],
                    kept: dict[str, np.ndarray] | None, manifest: dict) -> dict[str, Path]:
    """Write every file of a selection (see the module docstring) whole or not at all; returns ``{kind: path}``.

    ``pools`` are :class:`~mixopt.selection.read.Source`; ``buckets[name]`` holds each record's
    bucket index (-1 = none); ``kept[name]`` a boolean mask, or ``kept=None``.
    """
    out_dir = Path(out_dir).expanduser()
    final = out_dir.resolve()
    k = int(manifest["buckets"])
    field = manifest.get("score_field", SCORE_FIELD)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)  # mkdtemp makes it 0700; the moved folder should follow the umask
    except OSError as exc:
        raise StoreError(f"Cannot write the selection to {out_dir}: {exc.strerror or exc}. Pass a writable --out.") from None
    try:
        pools_yaml: dict = {}
        files: dict[str, Path] = {}
        for src in pools:
            name = src.name
            _write(stage / f"{name}.scored.jsonl", _jsonl(src.rows, scores[name], field))
            entries = []
            for j in range(k):
                idx = np.flatnonzero(buckets[name] == j)
                fname = f"{name}.q{j + 1}.jsonl"
                _write(stage / fname, _jsonl([src.rows[i] for i in idx], scores[name][idx], field))
                entries.append({"name": f"q{j + 1}", "path": fname, "text_field": src.spec.text_field})  # beside pools.yaml
            pools_yaml[name] = {"pools": entries}
            if kept is not None:
                idx = np.flatnonzero(kept[name])
                _write(stage / f"{name}.kept.jsonl", _jsonl([src.rows[i] for i in idx], scores[name][idx], field))
        _write(stage / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n").encode())
        header = (f"# mixopt select: {manifest['method']} scores against {manifest['target']}; "
                  f"{k} equal-token buckets per pool, q1 best.\n# Paths are relative to this file. Pass it to `mixopt propose "
                  "--pools`; under `propose: pools:` in a sweep config, give the paths from where mixopt runs.\n")
        _write(stage / POOLS_FILE, (header + yaml.safe_dump(pools_yaml, sort_keys=False)).encode())
        if not final.exists():
            os.replace(stage, final)  # one atomic step
        else:
            names = sorted(p.name for p in stage.iterdir() if p.name not in (POOLS_FILE, MANIFEST))
            stale = _earlier_files(final, set(names))  # buckets or pools of an earlier selection into this folder
            (final / POOLS_FILE).unlink(missing_ok=True)  # the completion marker goes first and comes back last
            for fname in [MANIFEST] + names + [POOLS_FILE]:  # the manifest first: it names every file that follows
                os.replace(stage / fname, final / fname)
            for f in stale:
                f.unlink(missing_ok=True)
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    for src in pools:
        files[f"{src.name}.scored"] = final / f"{src.name}.scored.jsonl"
    files["pools"] = final / POOLS_FILE
    return files


def complete(out_dir: Path, key: str) -> bool:
    """Whether ``out_dir`` already holds a finished selection with this content key, written there: every file
    ``pools.yaml`` names lies in ``out_dir`` and exists (its paths are relative to it; an older selection's absolute
    ones, in a copied or moved folder, point at the old one), and so does each pool's scored (and kept) file."""
    out_dir = Path(out_dir).expanduser()
    final = out_dir.resolve()
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
        pools = yaml.safe_load((out_dir / POOLS_FILE).read_text())
        if manifest.get("key") != key:
            return False
        paths = [_beside(Path(p["path"]), final) for d in pools.values() for p in d["pools"]]
        paths += [final / f"{name}.{kind}.jsonl" for name in manifest["pools"]
                  for kind in ("scored", *(("kept",) if manifest.get("keep") is not None else ()))]
    except (OSError, ValueError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return False
    return all(p.parent == final and p.is_file() for p in paths)


def _beside(path: Path, folder: Path) -> Path:
    return path if path.is_absolute() else folder / path


def located_pools(raw: object, pools_file: str | Path) -> object:
    """A pools file's content (``{domain: {pools: [...]}}``, select's, or one domain's ``{pools: [...]}``) with each
    pool's ``path`` made absolute: a relative path is read relative to the pools file's folder (select writes them so,
    and a moved or shared selection folder keeps working), else, where only that exists, from the working directory
    (a hand-written file of an older mixopt); an absolute path that is gone is looked for by its file name beside the
    pools file (an older selection's folder, moved). A path found nowhere is a one-line error naming the pools file
    and the fix. Anything else is returned as it is, for the schema's own errors."""
    here = Path(pools_file).expanduser().resolve().parent

    def locate(domain: str | None, pool: dict) -> dict:
        path = pool.get("path")
        if not isinstance(path, str):
            return pool
        given = Path(path).expanduser()
        tries = [here / given] if not given.is_absolute() else [given, here / given.name]
        if not given.is_absolute():
            tries.append(given.resolve())
        found = next((str(t) for t in tries if names_local_data(str(t))), None)
        if found is None and looks_like_hub_id(path):
            return pool
        if found is None:
            whose = f" of domain '{domain}'" if domain else ""
            raise ConfigError(f"Pools file {pools_file}: pool '{pool.get('name')}'{whose} reads {path}, which does not "
                              f"exist (looked for {tries[0]}{f' and {tries[1]}' if len(tries) > 1 else ''}). Rerun mixopt "
                              f"select into that folder, or fix the paths in {pools_file}.")
        return {**pool, "path": str(Path(found).resolve()) if Path(found).exists() else found}

    def domain_pools(domain: str | None, body: object) -> object:
        if not isinstance(body, dict) or not isinstance(body.get("pools"), list):
            return body
        return {**body, "pools": [locate(domain, p) if isinstance(p, dict) else p for p in body["pools"]]}

    if not isinstance(raw, dict):
        return raw
    if "pools" in raw:
        return domain_pools(None, raw)
    return {d: domain_pools(str(d), body) for d, body in raw.items()}


def earlier_pools(folder: Path) -> list[str]:
    """The pools of a selection written into ``folder`` earlier (per its manifest, which has the selection's key);
    none when it holds none."""
    try:
        manifest = json.loads((Path(folder).expanduser() / MANIFEST).read_text())
        pools = manifest.get("pools", {}) if isinstance(manifest.get("key"), str) else {}
    except (OSError, ValueError, AttributeError):
        return []
    return sorted(pools) if isinstance(pools, dict) else []


def _earlier_files(folder: Path, keep: set[str]) -> list[Path]:
    """Files an earlier selection wrote into ``folder`` (per its manifest's pools) that this one did not."""
    pools = earlier_pools(folder)
    pattern = re.compile(r"^(?:scored|kept|q\d+)\.jsonl$")
    out = []
    for name in pools:
        for f in folder.glob(f"{glob.escape(name)}.*.jsonl"):
            if f.name not in keep and pattern.match(f.name[len(name) + 1:]):
                out.append(f)
    return out


def _write(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise StoreError(f"Cannot write {path}: {exc.strerror or exc}. Check the disk space and permissions of --out.") from None
