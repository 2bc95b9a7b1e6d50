"""Loader for RegMix's public proxy-run tables (see shared/anchors/regmix/README.md)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TARGET = "metric/the_pile_pile_cc_val_loss"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "anchors" / "regmix"
BUNDLED_DIR = REPO_ROOT / "benchmarks" / "data" / "regmix"  # the same MIT-licensed tables, copied into the repo


def data_dir(arg: str | None = None) -> Path:
    """``--data``, else ``$MIXOPT_REGMIX_DIR``, else ``../shared/anchors/regmix``, else the repo's bundled copy."""
    if arg or os.environ.get("MIXOPT_REGMIX_DIR"):
        return Path(arg or os.environ["MIXOPT_REGMIX_DIR"])
    return DEFAULT_DIR if (DEFAULT_DIR / "train_mixture_1m.csv").exists() else BUNDLED_DIR


@dataclass
class RegMixData:
    domains: list[str]     # column order of the weights
    W_train: np.ndarray    # (512, 17), rows renormalised to sum to 1
    y_train: np.ndarray    # (512,) 1M-model target loss
    W_test: np.ndarray     # (256, 17)
    y_test_1m: np.ndarray  # (256,)
    y_test_60m: np.ndarray  # (256,)


def _read(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    keep = [i for i, c in enumerate(header) if c.strip()]  # drop empty trailing columns
    body = [[row[i] for i in keep] for row in rows[1:] if any(x.strip() for x in row)]
    return [header[i].strip() for i in keep], np.array(body, dtype=float)


def _join(directory: Path, mixture: str, loss: str, target: str):
    mcols, M = _read(directory / mixture)
    lcols, L = _read(directory / loss)
    if target not in lcols:
        raise KeyError(f"{loss} has no column {target!r}")
    by_index = {int(i): row[lcols.index(target)] for i, row in zip(L[:, 0], L)}
    y = np.array([by_index[int(i)] for i in M[:, 0]])
    W = M[:, 1:]
    return mcols[1:], W / W.sum(axis=1, keepdims=True), y


def load_regmix(directory: Path, target: str = TARGET) -> RegMixData:
    """Load train (512) and test (256; 1M and 60M losses) tables, joined on ``index``."""
    domains, Wtr, ytr = _join(directory, "train_mixture_1m.csv", "train_pile_loss_1m.csv", target)
    _, Wte, y1 = _join(directory, "test_mixture_1m.csv", "test_pile_loss_1m.csv", target)
    _, Wte60, y60 = _join(directory, "test_mixture_60m.csv", "test_pile_loss_60m.csv", target)
    if not np.allclose(Wte, Wte60):
        raise ValueError("test_mixture_1m.csv and test_mixture_60m.csv differ; expected identical mixtures")
    return RegMixData(domains, Wtr, ytr, Wte, y1, y60)


def available(directory: Path) -> bool:
    return (directory / "train_mixture_1m.csv").is_file()
