"""Write a selection: scored records, equal-token score buckets, and ``pools.yaml``.

Files of one call, for each pool NAME:

- ``NAME.scored.jsonl``: every input record, fields unchanged, plus ``score``
  (``null`` for records without text), in input order;
- ``NAME.q1.jsonl`` ... ``NAME.qK.jsonl``: the records of each score bucket
  (equal token shares, ``q1`` best), in input order;
- ``NAME.kept.jsonl``: the records ``--keep`` selected, when asked;
- ``pools.yaml``: ``{NAME: {pools: [{name: q1, path: ...}, ...]}}``, the
  ``propose.pools`` format, so that `propose` reads the buckets directly;
- ``selection.json``: what was run (method, settings, key, counts).

Everything is written into a staging folder first and moved in at the end,
``pools.yaml`` last, so a kill part way leaves no partial output.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError, StoreError

MANIFEST = "selection.json"
POOLS_FILE = "pools.yaml"


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
    cuts = np.clip(cuts, np.arange(1, k), n - (k - np.arange(1, k)))  # at least one item per bucket
    cuts = np.maximum.accumulate(cuts) if k > 1 else cuts
    rank_bucket = np.searchsorted(cuts, np.arange(n), side="right")
    out = np.full(scores.shape[0], -1, dtype=np.int64)
    out[order] = rank_bucket
    return out


def _jsonl(rows, scores=None) -> bytes:
    lines = []
    for i, r in enumerate(rows):
        rec = dict(r)
        if scores is not None:
            s = float(scores[i])
            rec["score"] = s if math.isfinite(s) else None
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
            _write(stage / f"{name}.scored.jsonl", _jsonl(src.rows, scores[name]))
            entries = []
            for j in range(k):
                idx = np.flatnonzero(buckets[name] == j)
                fname = f"{name}.q{j + 1}.jsonl"
                _write(stage / fname, _jsonl([src.rows[i] for i in idx], scores[name][idx]))
                entries.append({"name": f"q{j + 1}", "path": str(final / fname)})
            pools_yaml[name] = {"pools": entries}
            if kept is not None:
                idx = np.flatnonzero(kept[name])
                _write(stage / f"{name}.kept.jsonl", _jsonl([src.rows[i] for i in idx], scores[name][idx]))
        _write(stage / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n").encode())
        header = (f"# mixopt select: {manifest['method']} scores against {manifest['target']}; "
                  f"{k} equal-token buckets per pool, q1 best.\n# Use under `propose: pools:` in a sweep config.\n")
        _write(stage / POOLS_FILE, (header + yaml.safe_dump(pools_yaml, sort_keys=False)).encode())
        if not final.exists():
            os.replace(stage, final)  # one atomic step
        else:
            names = sorted(p.name for p in stage.iterdir() if p.name != POOLS_FILE)
            stale = _earlier_files(final, set(names))  # buckets or pools of an earlier selection into this folder
            (final / POOLS_FILE).unlink(missing_ok=True)  # the completion marker goes first and comes back last
            for fname in names + [POOLS_FILE]:
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
    """Whether ``out_dir`` already holds a finished selection with this content key."""
    out_dir = Path(out_dir).expanduser()
    try:
        done = json.loads((out_dir / MANIFEST).read_text()).get("key") == key
    except (OSError, ValueError):
        return False
    return done and (out_dir / POOLS_FILE).is_file()


def earlier_pools(folder: Path) -> list[str]:
    """The pools of a selection written into ``folder`` earlier (per its manifest); none when it holds none."""
    try:
        pools = json.loads((Path(folder).expanduser() / MANIFEST).read_text()).get("pools", {})
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
