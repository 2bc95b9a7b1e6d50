"""Stop 40's structure moves: each name has one home, and the old import paths still work."""

from __future__ import annotations

import numpy as np
import pytest


def test_measure_noise_lives_with_the_seed_noise():
    from mixopt import pipeline
    from mixopt.surrogates import noise

    assert pipeline.measure_noise is noise.measure_noise  # the old path re-exports it
    assert "measure_noise" in pipeline.__all__
    out = noise.measure_noise(np.array([1.0, 1.2, 3.0, 3.2]), np.array([0, 0, 1, 1]))
    assert out["seed_sd"] == pytest.approx(np.sqrt(0.02))
    assert not hasattr(pipeline, "selection_target")  # dead: no caller anywhere


def test_the_cache_root_is_a_file_helper_and_the_proxy_does_not_load_the_data_layer():
    import subprocess
    import sys

    from mixopt import io
    from mixopt.data import domains

    assert domains.default_cache_dir is io.default_cache_dir
    code = "import sys, mixopt.proxy.device; print(sorted(m for m in sys.modules if m.startswith('mixopt.data')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_scale_value_lives_with_the_record_it_checks():
    from mixopt.errors import DataError
    from mixopt.runs import record, tables_io

    assert tables_io.check_scale_value is record.check_scale_value
    with pytest.raises(DataError, match="tokens must be a positive finite number"):
        record.check_scale_value("-1", "tokens", where="the metrics file")


def test_a_plans_phases_have_one_phases_view():
    from mixopt.mixtures import as_phases, overall_shares
    from mixopt.plan import Plan, phase_pairs

    plan = Plan(budget_tokens=1e6, phases=[{"start_fraction": 0.0, "weights": {"a": 0.25, "b": 0.75}},
                                           {"start_fraction": 0.8, "weights": {"a": 1.0}}])
    pairs = plan.phase_pairs()
    assert pairs == [(0.0, {"a": 0.25, "b": 0.75}), (0.8, {"a": 1.0})] == phase_pairs(plan.phases)
    assert pairs[0][1] is plan.phases[0].weights  # no copy, no re-validation: the floats are the plan's own
    assert plan.overall_weights() == overall_shares(pairs)
    assert as_phases(pairs)[1][0] == 0.8


def test_the_scale_aware_estimators_share_one_public_base():
    import pickle

    from mixopt.projector import ScaleProjector
    from mixopt.surrogates import SCALE_ESTIMATORS, scale
    from mixopt.surrogates.scale_base import ScaleEstimator

    assert scale._ScaleBase is ScaleEstimator  # the old private name still imports
    assert scale.scale_inputs.__module__ == "mixopt.surrogates.scale_base" and scale.N_SCALE == 2
    assert all(issubclass(cls, ScaleEstimator) for cls in [*SCALE_ESTIMATORS.values(), ScaleProjector])
    # models pickled before NestedMixingLaw moved to nested_law.py name it in scale.py
    from mixopt.surrogates.nested_law import NestedMixingLaw
    assert pickle.loads(b"cmixopt.surrogates.scale\nNestedMixingLaw\n.") is NestedMixingLaw
    assert pickle.loads(pickle.dumps(scale.ScaleGP(length_scale=2.0))).get_params()["length_scale"] == 2.0


def test_a_pools_documents_are_read_in_the_data_layer():
    from mixopt.data import pools
    from mixopt.planning import pool_sources, quality
    from mixopt.runs import pool_runs

    for name in ("scored_documents", "in_bucket", "pool_file_spec", "pool_documents"):
        assert getattr(pool_runs, name) is getattr(pools, name)  # the old path re-exports each
    assert quality.pool_documents is pools.pool_documents and pool_sources.pool_documents is pools.pool_documents


def test_the_kept_pools_data_is_built_in_the_data_layer():
    import ast
    from pathlib import Path

    from mixopt import verify
    from mixopt.data import pools
    from mixopt.runs import pool_runs

    for name in ("KeptPools", "source_pool", "kept_pools_data", "token_digest"):
        assert getattr(pool_runs, name) is getattr(pools, name)  # the old path re-exports each
    assert verify.kept_pools_data is pools.kept_pools_data and verify.KeptPools is pools.KeptPools
    tree = ast.parse(Path(pools.__file__).read_text())
    own = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level}
    assert own <= {"config", "errors", "domains", "sources", "tokenize", "types"}  # data-layer names only
    assert pools.token_digest(np.arange(3), extra="x") == pools.token_digest(np.arange(3), extra="x") != pools.token_digest(np.arange(3))


@pytest.mark.parametrize("make", ["DSIR", "TargetClassifier"])
def test_the_document_scorers_are_scikit_learn_estimators(make):
    from sklearn.base import clone

    from mixopt.selection.classifier import TargetClassifier
    from mixopt.selection.dsir import DSIR

    est = {"DSIR": lambda: DSIR(n_buckets=64, alpha=0.5),
           "TargetClassifier": lambda: TargetClassifier(n_buckets=64, C=2.0, folds=2, random_state=3, char_buckets=0)}[make]()
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert copy.set_params(n_buckets=128).n_buckets == 128 and est.n_buckets == 64
    target, pool = ["the cat sat on the mat", "a cat and a mat"], ["stock prices fell", "the cat ran", "markets rose today"]
    assert np.array_equal(est.fit_score(target, pool), clone(est).fit_score(target, pool))  # a clone scores the same


def test_temperature_prior_is_a_sampler_concern():
    import ast
    from pathlib import Path

    from mixopt import mixtures, samplers
    from mixopt.config import SamplerConfig

    assert mixtures.temperature_prior is samplers.temperature_prior  # the old path still imports
    from mixopt.mixtures import temperature_prior
    assert temperature_prior({"a": 1, "b": 3}) == samplers.temperature_prior({"a": 1, "b": 3}, SamplerConfig().temperature)
    tree = ast.parse(Path(mixtures.__file__).read_text())
    own = {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level}
    assert own == {"errors"}  # the mixture type needs no config


def test_architectures_verb_table_names_code_that_exists():
    import importlib
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    table = doc[doc.index("## Where each verb lives"):]
    missing = []
    for name in re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)`", table):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module("mixopt." + ".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            break
        if obj is None:
            missing.append(name)
    assert not missing, missing
    sweep_row = next(line for line in table.splitlines() if line.startswith("| sweep |"))
    assert "`runs.sweep.execute_runs`" in sweep_row and "execute_run`" not in sweep_row  # what the executors call


def test_build_report_is_one_function_per_figure():
    import inspect

    from mixopt.report import build

    figures = [f"_fig_{n}" for n in ("mixture", "predictions", "loss_matrix", "curves", "frontier", "agreement", "verification")]
    source = inspect.getsource(build.build_report)
    assert all(callable(getattr(build, f)) and f"{f}(add," in source for f in figures)
    assert [source.index(f"{f}(add,") for f in figures] == sorted(source.index(f"{f}(add,") for f in figures)  # page order
    assert len(source.splitlines()) < 90


def test_score_s_base_mixture_documents_are_resolved_in_the_library(tmp_path):
    import inspect
    import json
    import warnings

    from mixopt import pipeline
    from mixopt.cli import cmd_score
    from mixopt.errors import ConfigError

    assert pipeline.base_mixture_docs(None, {}) == (None, None)
    with pytest.raises(ConfigError, match="--paths gives data for base-mixture domains, but no --base-mixture was given"):
        pipeline.base_mixture_docs(None, {"code": "x.jsonl"})
    code = tmp_path / "code.jsonl"
    code.write_text("".join(json.dumps({"text": f"def f{i}(): return {i}"}) + "\n" for i in range(6)))
    plan = tmp_path / "plan.yaml"  # a plan from before stop 36: no provenance.embedded_domains
    plan.write_text("budget_tokens: 100000\nphases:\n- start_fraction: 0.0\n  weights: {code: 0.25, prose: 0.75}\n")
    with pytest.raises(ConfigError, match=r"--paths names \['web'\], which the base mixture"):
        pipeline.base_mixture_docs(plan, {"web": str(code)})
    notes = []
    w, docs = pipeline.base_mixture_docs(plan, {"code": str(code)}, max_docs=4, note=notes.append)
    assert w == {"code": 0.25, "prose": 0.75} and len(docs["code"]) == 4 and len(docs["prose"]) == 4
    assert notes == ["note: read base-mixture domain(s) prose from the embedded corpus (no --paths); if the plan was made "
                     "on your own data of those names, pass --paths DOMAIN=PATH for each"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert pipeline.base_mixture_docs(plan, {"code": str(code)}, max_docs=4)[1] == docs  # seeded: the same sample
    assert [str(x.message) for x in seen] == notes  # without a note callback, the note is a warning
    source = inspect.getsource(cmd_score.score_cmd)
    assert "pipeline.base_mixture_docs(" in source and "embedded_domains" not in source and "load_plan" not in source


def test_plan_pools_measure_targets_default_to_the_select_run_s(tmp_path):
    import json

    from mixopt import pipeline
    from mixopt.errors import ConfigError

    pools = tmp_path / "pools.yaml"
    target = tmp_path / "t.jsonl"
    target.write_text('{"body": "x"}\n')
    with pytest.raises(ConfigError, match="--measure needs --target"):
        pipeline.measure_targets(pools)  # no selection.json beside it
    assert pipeline.measure_targets(pools, "a.jsonl") == ("a.jsonl", "text", "text")
    (tmp_path / "selection.json").write_text(json.dumps({"target": str(target), "text_field": "content",
                                                         "target_text_field": "body"}))
    assert pipeline.measure_targets(pools) == (str(target), "body", "content")
    assert pipeline.measure_targets(pools, None, "txt", "tt") == (str(target), "tt", "txt")
    assert pipeline.measure_targets(pools, "other") == ("other", "text", "content")  # another target: not select's field
    (tmp_path / "selection.json").write_text(json.dumps({"target": "gone/t.jsonl"}))
    with pytest.raises(ConfigError, match=r"scored against --target gone/t.jsonl, which is not found \(it was stored relative"):
        pipeline.measure_targets(pools)


def test_mixture_rows_is_the_one_silent_row_builder():
    import inspect

    from mixopt.mixtures import Mixture, mixture_rows
    from mixopt.projector import from_runs
    from mixopt.runs import table

    ms = [Mixture({"a": 0.25, "b": 0.75}), {"b": 1.0, "zz": 0.0}, {"a": 1}]
    rows = mixture_rows(ms, ["a", "b", "c"])
    old = np.array([[m.get(d, 0.0) for d in ["a", "b", "c"]] for m in ms])
    assert rows.dtype == old.dtype == np.float64 and rows.shape == (3, 3) and np.array_equal(rows, old)
    assert mixture_rows(iter(ms[:2]), ["b"]).tolist() == [[0.75], [1.0]]  # any iterable; unknown names dropped
    assert mixture_rows([], ["a"]).shape == np.array([]).shape == (0,)
    assert mixture_rows([{"a": 1}], ["a"]).dtype == np.array([[1]]).dtype  # as built: ints stay ints
    assert "mixture_rows(mixtures, domains)" in inspect.getsource(table.records_table)
    assert inspect.getsource(from_runs).count("mixture_rows([seen_shares(") == 2


def test_docstring_references_name_where_each_function_and_class_lives():
    """A ``:func:`mixopt.a.b.NAME``` names NAME's home module, not a module that re-exports it after a move (projector/
    scale.py named mixopt.surrogates.scale.scale_inputs, which moved to surrogates/scale_base.py)."""
    import dataclasses
    import importlib
    import inspect
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "mixopt"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        for name in re.findall(r":(?:func|class|meth|data|attr):`~?(mixopt(?:\.\w+)+)`", path.read_text()):
            parts = name.split(".")
            for cut in range(len(parts), 0, -1):
                try:
                    obj, module = importlib.import_module(".".join(parts[:cut])), ".".join(parts[:cut])
                    break
                except ImportError:
                    continue
            for attr in parts[cut:]:
                fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
                obj = getattr(obj, attr, None) if attr not in fields else "a dataclass field"
                if obj is None:
                    wrong.append(f"{path.name}: {name} does not exist")
                    break
            else:
                if len(parts) == cut + 1 and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ != module:
                    wrong.append(f"{path.name}: {name} lives in {obj.__module__}")
    assert not wrong, wrong


def test_build_plan_s_provenance_is_one_helper():
    import inspect
    from types import SimpleNamespace

    from mixopt import __version__
    from mixopt.planning import propose

    assert "_plan_provenance(ctx, cfg, model_params, phases, end_phase, pooled, pools_kept)" in inspect.getsource(propose.build_plan)
    ctx = SimpleNamespace(provenance={"config": "c.yaml"}, domains=["a", "b"], reuse=None, specs=None)
    two = [{"start_fraction": 0.0, "weights": {"a": 1.0}}, {"start_fraction": 0.8, "weights": {"b": 1.0}}]
    out = propose._plan_provenance(ctx, SimpleNamespace(cooldown_switch=None), 1e6, two, "reorder", {}, {})
    assert out == {"config": "c.yaml", "domains": ["a", "b"], "model_params": 1e6, "mixopt_version": __version__,
                   "end_phase": "reorder"}
    assert "end_phase" not in propose._plan_provenance(ctx, SimpleNamespace(cooldown_switch=0.8), None, two, None, {}, {})
    assert ctx.provenance == {"config": "c.yaml"}  # the context's own is not touched
