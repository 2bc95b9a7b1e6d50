"""Import a script of ``benchmarks/`` as a module in a test (it is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str, monkeypatch):
    """``benchmarks/<name>.py`` as a module: its folder goes on ``sys.path`` (for ``_common`` and friends) and the
    module into ``sys.modules`` (dataclasses look their module up there), both undone after the test."""
    path = BENCH_DIR / f"{name}.py"
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module
