"""The package's layers: nothing imports upward (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mixopt"

# lowest first; a module may import its own layer or any below it
LAYERS = [
    {"errors", "io"},
    {"config"},
    {"data"},
    {"mixtures", "samplers", "plan", "reuse", "repetition", "repetition_fit"},
    {"proxy"},
    {"runs"},
    {"surrogates", "projector", "selection"},
    {"planning"},
    {"export"},
    {"report"},
    {"pipeline", "verify"},
    {"demo"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
TOP_LEVEL_FREE = {"__init__", "__main__", "configs"}  # the package face, `python -m mixopt`, packaged YAML


def _top(parts: list[str]) -> str:
    return parts[0].removesuffix(".py")


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(first component of each mixopt module this file imports, line)."""
    rel = path.relative_to(PACKAGE).parts
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - node.level] if node.level > 1 else list(rel[:-1])
                target = base + (node.module.split(".") if node.module else [a.name for a in node.names][:1])
            elif (node.module or "").startswith("mixopt."):
                target = node.module.split(".")[1:]
            elif node.module == "mixopt":
                target = [node.names[0].name]
            else:
                continue
        elif isinstance(node, ast.Import):
            target = next((a.name.split(".")[1:] for a in node.names if a.name.startswith("mixopt.")), None)
            if not target:
                continue
        else:
            continue
        if target:
            out.append((_top(target), node.lineno))
    return out


def test_every_module_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    tops |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    missing = sorted(tops - set(RANK) - TOP_LEVEL_FREE)
    assert not missing, f"modules without a layer in tests/test_layers.py and docs/ARCHITECTURE.md: {missing}"


def test_no_upward_imports():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _top(list(path.relative_to(PACKAGE).parts))
        if me in TOP_LEVEL_FREE:
            continue
        for target, line in imports_of(path):
            if target in RANK and RANK[target] > RANK[me]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports mixopt.{target} (layer {RANK[target]} > {RANK[me]})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """A negative control: the parser finds a relative upward import."""
    fake = PACKAGE / "runs" / "_layer_probe_tmp.py"
    fake.write_text("from ..planning.search import simulate_search\n")
    try:
        assert ("planning", 1) in imports_of(fake)
    finally:
        fake.unlink()
