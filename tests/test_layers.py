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


def imported_modules(path: Path) -> list[tuple[list[str], int]]:
    """(the path inside mixopt of each module this file imports, line); ``from X import a, b`` gives one entry per
    name (``X.a``, ``X.b``: a name may be a submodule; :func:`module_file` falls back to ``X`` when it is not)."""
    rel = path.relative_to(PACKAGE).parts
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - node.level] if node.level > 1 else list(rel[:-1])
                module = base + (node.module.split(".") if node.module else [])
            elif node.module == "mixopt" or (node.module or "").startswith("mixopt."):
                module = node.module.split(".")[1:]
            else:
                continue
            out += [(module + [a.name], node.lineno) for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Import):
            out += [(a.name.split(".")[1:], node.lineno) for a in node.names if a.name.startswith("mixopt.")]
    return [(target, line) for target, line in out if target]


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(first component of each mixopt module this file imports, line)."""
    return [(_top(target), line) for target, line in imported_modules(path)]


def module_file(target: list[str]) -> str:
    """``mixopt/...py`` of an imported module path (a trailing imported name that is no submodule is dropped)."""
    for parts in (target, target[:-1]):
        if not parts:
            continue
        here = PACKAGE.joinpath(*parts)
        if here.with_suffix(".py").is_file():
            return f"mixopt/{'/'.join(parts)}.py"
        if (here / "__init__.py").is_file():
            return f"mixopt/{'/'.join(parts)}/__init__.py"
    return f"mixopt/{'/'.join(target)}"


# Directions the layers allow but the code no longer takes (structure review 40: F2, F3, F4, F11); (importer, imported)
# path prefixes. Keep them clean: a helper that both sides need belongs in the lower module.
FORBIDDEN = [
    ("mixopt/planning/quality.py", "mixopt/runs/pool_runs.py"),  # reading a pool's documents: mixopt/data/pools.py
    ("mixopt/planning/pool_sources.py", "mixopt/runs/pool_runs.py"),
    ("mixopt/data/", "mixopt/runs/"),
    ("mixopt/verify.py", "mixopt/runs/pool_runs.py"),  # the data a plan's kept pools train on: data/pools.py
    ("mixopt/proxy/", "mixopt/data/domains.py"),  # the cache root: io.default_cache_dir
    ("mixopt/selection/cache.py", "mixopt/data/domains.py"),
    ("mixopt/surrogates/", "mixopt/runs/tables_io.py"),  # check_scale_value: runs/record.py
    ("mixopt/projector/", "mixopt/surrogates/scale.py"),  # the scale estimators' base: surrogates/scale_base.py
    ("mixopt/surrogates/nested_law.py", "mixopt/surrogates/scale.py"),
    ("mixopt/surrogates/scale_base.py", "mixopt/surrogates/scale.py"),
    ("mixopt/mixtures.py", "mixopt/config.py"),  # the sampling prior's default: samplers.temperature_prior
]


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


def forbidden_imports(path: Path) -> list[str]:
    me = f"mixopt/{path.relative_to(PACKAGE).as_posix()}"
    return list(dict.fromkeys(f"{me}:{line} imports {module_file(target)}" for target, line in imported_modules(path)
                              for importer, imported in FORBIDDEN
                              if me.startswith(importer) and module_file(target).startswith(imported)))


def test_no_forbidden_directions():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in forbidden_imports(path)]
    assert not found, "imports in a direction tests/test_layers.py FORBIDDEN rules out:\n" + "\n".join(found)


def test_the_checker_sees_every_imported_name_and_a_forbidden_direction():
    """Negative controls: each name of ``from mixopt import a, b`` is checked, and a FORBIDDEN direction is found."""
    fake = PACKAGE / "proxy" / "_layer_probe_tmp.py"
    fake.write_text("from mixopt import errors, planning\nfrom ..data import domains\nfrom ..surrogates.scale import ScaleGP\n")
    try:
        assert [t for t, _ in imports_of(fake)] == ["errors", "planning", "data", "surrogates"]
        assert forbidden_imports(fake) == ["mixopt/proxy/_layer_probe_tmp.py:2 imports mixopt/data/domains.py"]
    finally:
        fake.unlink()
