"""The small multi-domain corpus shipped inside the package, so mixopt works offline.

The files under ``corpus/`` are written by :func:`mixopt.data.corpus_build.build_corpus`
(``mixopt corpus build``); ``manifest.json`` lists the domains. Nothing is read
at import time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import DataError

EMBEDDED_DIR = Path(__file__).resolve().parent / "corpus"


@lru_cache(maxsize=1)
def _manifest_cached(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"The embedded corpus must have a manifest at {p}; it is missing. Reinstall mixopt, "
                        "or rebuild the corpus with `mixopt corpus build --out mixopt/data/corpus`.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"The embedded corpus manifest {p} must be valid JSON ({exc}). Reinstall mixopt "
                        "or rebuild the corpus with `mixopt corpus build`.") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"The embedded corpus manifest {p} must map domain names to entries; got "
                        f"{type(data).__name__} with {len(data) if hasattr(data, '__len__') else 0} items. Rebuild it.")
    return data


def embedded_manifest() -> dict:
    """``{domain: {source, licence, n_docs, n_bytes, sha256, file, ...}}`` (a copy, safe to modify)."""
    return json.loads(json.dumps(_manifest_cached(str(EMBEDDED_DIR / "manifest.json"))))


def embedded_domains() -> list[str]:
    """Names of the embedded domains, sorted."""
    return sorted(_manifest_cached(str(EMBEDDED_DIR / "manifest.json")))


def embedded_path(domain: str) -> Path:
    """Path of one domain's ``<domain>.jsonl.gz`` file (``{"text", "source"}`` per line)."""
    manifest = _manifest_cached(str(EMBEDDED_DIR / "manifest.json"))
    if domain not in manifest:
        raise DataError(f"Embedded domain must be one of {sorted(manifest)}; got '{domain}'. "
                        "Use one of those names, or list your own data under data.domains.")
    path = EMBEDDED_DIR / manifest[domain].get("file", f"{domain}.jsonl.gz")
    if not path.is_file():
        raise DataError(f"Embedded domain '{domain}' must have its data file {path}; it is missing. "
                        "Reinstall mixopt or rebuild with `mixopt corpus build --out mixopt/data/corpus`.")
    return path
