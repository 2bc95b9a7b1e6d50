"""Property-based fuzzing: no input crashes with a traceback; every rejection is a one-line MixoptError."""

from __future__ import annotations

import json
import math
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mixopt.config import SweepConfig, config_from_dict, load_config
from mixopt.errors import BudgetError, MixoptError
from mixopt.export import EXPORTERS, export_plan
from mixopt.mixtures import max_weights_for_epochs
from mixopt.samplers import dirichlet_candidates, sample_dirichlet_mixtures
from mixopt.plan import plan_from_dict
from mixopt.runs.store import RunStore
from mixopt.runs.tables_io import import_regmix, parse_mixture_rows, read_mixtures_for_model

import os

N_EXAMPLES = int(os.environ.get("MIXOPT_FUZZ_EXAMPLES", "60"))  # raise it for a deeper local soak
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_line(exc: MixoptError) -> None:
    msg = str(exc)
    assert msg.strip(), f"empty error message from {type(exc).__name__}"
    assert len(msg.splitlines()) == 1, f"multi-line error: {msg!r}"
    assert "Traceback" not in msg


# ------------------------------------------------------------------ shared strategies

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
)
# values that look like what the config fields expect, so validation gets past the first field
plausible = st.one_of(
    scalars, st.sampled_from([0, 1, 2, -1, 0.5, 1e-9, 1e30, "auto", "cpu", "bytes", "embedded", "none", "dirichlet", "natural"]),
    st.lists(st.one_of(st.floats(-1, 2), st.sampled_from(["code", "natural", "uniform"])), max_size=4),
)
json_like = st.recursive(plausible, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=20)

FIELDS = {
    "proxy": ["n_layer", "n_embd", "head_size", "block_size", "batch_size", "tokens", "lr", "checkpoints", "eval_tokens", "device", "threads", "dtype"],
    "data": ["corpus", "include", "domains", "targets", "val_fraction", "max_documents", "tokenizer"],
    "sampler": ["method", "temperature", "strength_min", "strength_max", "max_epochs", "min_weight", "baselines", "two_phase_runs"],
    "propose": ["budget_tokens", "target", "n_candidates", "min_weights", "max_weights", "pools", "upsample_fraction_min"],
}
section = lambda name: st.dictionaries(st.sampled_from(FIELDS[name] + ["bogus"]), json_like, max_size=5)  # noqa: E731
config_dicts = st.one_of(
    json_like,
    st.fixed_dictionaries({}, optional={
        "name": json_like, "seed": json_like, "runs": json_like, "workers": json_like,
        **{k: st.one_of(section(k), json_like) for k in FIELDS},
    }),
)


# ------------------------------------------------------------------ config parsing

@FUZZ
@given(raw=config_dicts)
def test_config_from_dict_never_crashes(raw):
    try:
        cfg = config_from_dict(raw)
    except MixoptError as exc:
        one_line(exc)
        return
    assert isinstance(cfg, SweepConfig)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=200), st.text(max_size=200),
                      config_dicts.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
                      st.text(alphabet=":-[]{}&*!|>'\"%@`#, \n\tab1", max_size=80)))
def test_load_config_on_random_files(tmp_path, blob):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass"))
    try:
        cfg = load_config(path)
    except MixoptError as exc:
        one_line(exc)
        return
    assert isinstance(cfg, SweepConfig)


# ------------------------------------------------------------------ mixture CSV import

cells = st.one_of(
    st.floats(0, 1).map(repr), st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "a\nb", "x\r", "\u2028", "nan", "inf", "-inf", "-0.1", "0", "1", "0.5", "1e309", "1e-400", " 0.25 ", "½", "１", "0x1p-2", "NaN", "null"]),
    st.text(max_size=6),
)
headers = st.lists(st.one_of(st.sampled_from(["code", "prose", "legal", "index", "", "val/code", "a\nb"]), st.text(min_size=1, max_size=6)),
                   min_size=1, max_size=5)


@st.composite
def csv_texts(draw, with_index=None):
    head = draw(headers)
    if with_index is None:
        with_index = draw(st.booleans())
    if with_index and "index" not in head:
        head = ["index", *head]
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(head) + 1), max_size=6))
    quote = lambda c: '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\n\r') else c  # noqa: E731
    lines = [",".join(quote(h) for h in head)] + [",".join(quote(c) for c in r) for r in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", ",\n"]))


def _check_W(W: np.ndarray) -> None:
    if len(W):
        assert np.all(np.isfinite(W)) and np.all(W >= 0)
        assert np.allclose(W.sum(axis=1), 1.0, atol=1e-9)


@FUZZ
@given(text=st.one_of(csv_texts(), st.text(max_size=120)), raw=st.booleans())
def test_parse_mixture_rows_fuzz(tmp_path, text, raw):
    path = tmp_path / "mix.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if not raw else text.encode("latin-1", "replace"))
    try:
        indices, domains, W, rejected = parse_mixture_rows(path)
    except MixoptError as exc:
        one_line(exc)
        return
    assert W.shape == (len(indices), len(domains))
    _check_W(W)
    for msg in rejected:
        assert "\n" not in msg
    try:
        idx2, W2 = read_mixtures_for_model(path, sorted(domains))
    except MixoptError as exc:
        one_line(exc)
    else:
        assert not rejected
        _check_W(W2)


@FUZZ
@given(mix=csv_texts(with_index=True), met=csv_texts(with_index=True))
def test_import_regmix_fuzz(tmp_path, mix, met):
    (tmp_path / "m.csv").write_text(mix)
    (tmp_path / "y.csv").write_text(met)
    store = RunStore(tmp_path / f"store-{abs(hash((mix, met)))}")
    try:
        n, rejected = import_regmix(store, tmp_path / "m.csv", tmp_path / "y.csv")
    except MixoptError as exc:
        one_line(exc)
        return
    recs = store.records()
    assert len(recs) <= n  # identical rows collapse onto one content-keyed record
    for r in recs:
        w = np.array(list(r.mixture.values()))
        assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-9
        assert all(math.isfinite(v) for v in r.metrics.values())


# ------------------------------------------------------------------ plans and exporters

domain_names = st.sampled_from(["code", "prose", "legal", "math", "web", "a b", "ü", "", "a\nb", "x\r"])
weights = st.dictionaries(domain_names, st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True), st.just(0.0)), max_size=4)


@st.composite
def normalised_weights(draw):
    names = draw(st.lists(st.sampled_from(["code", "prose", "legal", "math"]), min_size=1, max_size=4, unique=True))
    raw = draw(st.lists(st.floats(0, 10), min_size=len(names), max_size=len(names)))
    total = sum(raw)
    assume(total > 1e-6)
    return {n: x / total for n, x in zip(names, raw)}


phases = st.one_of(
    st.lists(st.fixed_dictionaries({"start_fraction": st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 0.9, 0.9999999])),
                                     "weights": st.one_of(normalised_weights(), weights)}), min_size=0, max_size=3),
    json_like,
)
plan_dicts = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {"budget_tokens": st.one_of(st.floats(1, 1e13), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**14), json_like),
         "phases": phases},
        optional={"tokens_per_doc": st.dictionaries(domain_names, st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(1, 1e5))),
                  "epochs": json_like, "predicted": json_like, "reasons": json_like, "pools": json_like},
    ),
)
path_maps = st.one_of(st.none(), st.just("all"), st.dictionaries(domain_names, st.sampled_from(["/data/x", "", "s3://b/c", "ü/ü"]), max_size=4))
tpd_maps = st.one_of(st.none(), st.just("all"), st.dictionaries(domain_names, st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 10**6)), max_size=4))


@FUZZ
@given(raw=plan_dicts, paths=path_maps, tpd=tpd_maps)
def test_plan_parse_and_export_fuzz(raw, paths, tpd):
    try:
        plan = plan_from_dict(raw)
    except MixoptError as exc:
        one_line(exc)
        return
    w = plan.overall_weights()
    assert abs(sum(w.values()) - 1) < 1e-6 and all(x >= 0 for x in w.values())
    if paths == "all":
        paths = {d: f"/data/{d}" for d in plan.domains}
    if tpd == "all":
        tpd = {d: 500.0 for d in plan.domains}
    for fmt in EXPORTERS:
        try:
            files = export_plan(plan, fmt, paths, tpd)
        except MixoptError as exc:
            one_line(exc)
            continue
        assert files and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
        for name, text in files.items():
            if name.endswith(".json"):
                json.loads(text)
            elif name.endswith((".yaml", ".yml")):
                yaml.safe_load(text)
        if fmt == "json":
            again = plan_from_dict(json.loads(files["plan.json"]))
            assert abs(sum(again.overall_weights().values()) - 1) < 1e-6


# ------------------------------------------------------------------ sampler invariants

counts_maps = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(0, 10**9), min_size=1, max_size=6)


@FUZZ
@given(counts=counts_maps, n=st.integers(0, 6), seed=st.integers(0, 2**32 - 1),
       budget=st.one_of(st.none(), st.floats(1, 1e12), st.sampled_from([0.0, -1.0, math.inf, math.nan])),
       max_epochs=st.floats(0.01, 100), min_weight=st.sampled_from([0.0, 2e-4, 0.01, 0.2, 0.5, 0.99]))
def test_dirichlet_sampler_invariants(counts, n, seed, budget, max_epochs, min_weight):
    kw = dict(seed=seed, budget_tokens=budget, max_epochs=max_epochs, min_weight=min_weight, max_tries=50)
    try:
        out = sample_dirichlet_mixtures(counts, n, **kw)
    except MixoptError as exc:
        one_line(exc)
        # only budget problems, or an all-zero corpus (no prior), may reject
        assert isinstance(exc, BudgetError) or sum(counts.values()) == 0, exc
        return
    assert len(out) == n
    domains = sorted(counts)
    caps = max_weights_for_epochs(counts, budget, max_epochs) if budget is not None else None
    keys = set()
    for m in out:
        v = m.vector(domains)
        assert np.all(np.isfinite(v)) and np.all(v >= 0) and abs(v.sum() - 1) < 1e-9
        assert np.all((v == 0) | (v >= min_weight * (1 - 1e-9)))
        if caps is not None:
            assert all(m.get(d, 0.0) <= caps[d] + 1e-9 for d in domains)
        keys.add(tuple(np.round(v, 6)))
    assert len(keys) == n  # distinct
    again = sample_dirichlet_mixtures(counts, n, **kw)
    assert [dict(m) for m in again] == [dict(m) for m in out]  # deterministic under the seed


@FUZZ
@given(prior_raw=st.lists(st.floats(0, 1), min_size=1, max_size=6), n=st.integers(1, 50), seed=st.integers(0, 2**32 - 1),
       lo=st.floats(1e-3, 10), span=st.floats(1, 100), min_weight=st.sampled_from([0.0, 1e-3, 0.3, 0.9]))
def test_dirichlet_candidates_on_simplex(prior_raw, n, seed, lo, span, min_weight):
    prior = np.array(prior_raw)
    assume(prior.sum() > 1e-9)
    prior = prior / prior.sum()
    W = dirichlet_candidates(prior, n, seed=seed, strength_range=(lo, lo * span), min_weight=min_weight)
    assert W.shape == (n, len(prior))
    assert np.all(np.isfinite(W)) and np.all(W >= 0)
    assert np.allclose(W.sum(axis=1), 1.0, atol=1e-9)
    assert np.array_equal(W, dirichlet_candidates(prior, n, seed=seed, strength_range=(lo, lo * span), min_weight=min_weight))


# ------------------------------------------------------------------ the CLI

def _cli_tokens(tmp: Path):
    files = st.sampled_from([str(tmp / "cfg.yaml"), str(tmp / "nope.yaml"), str(tmp), str(tmp / "plan.yaml"), str(tmp / "mix.csv"),
                             str(tmp / "store"), str(tmp / "empty-store"), "/dev/null", ""])
    words = st.sampled_from(["--store", "--out", "--runs", "--workers", "--executor", "--format", "--paths", "--target", "--model",
                             "--mixtures", "--budget", "--seed", "--folds", "--help", "0", "-1", "1e99", "nan", "ray", "x=y", "code=/d",
                             "mean:all-domains", "wmean:val/code=nan", "--bogus"])
    return st.lists(st.one_of(files, words, st.text(max_size=6)), max_size=7)


COMMANDS = ["sweep", "fit", "predict", "export", "runs", "propose", "score", "report", "bogus"]


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-fuzz")
    (d / "cfg.yaml").write_text("runs: [1, 2\n")  # broken YAML: sweep must stop before training anything
    (d / "plan.yaml").write_text(yaml.safe_dump({"budget_tokens": 1e9, "phases": [{"start_fraction": 0.0, "weights": {"code": 0.4, "prose": 0.6}}]}))
    (d / "mix.csv").write_text("index,code,prose\n0,0.5,0.5\n1,nan,1\n")
    (d / "store" / "runs").mkdir(parents=True)
    (d / "store" / "runs" / "bad.json").write_text("{not json")
    (d / "empty-store").mkdir()
    return d


def test_cli_random_argv(cli_dir, capsys):
    from mixopt.cli.main import run

    @settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(cmd=st.sampled_from(COMMANDS), rest=_cli_tokens(cli_dir), sub=st.sampled_from([[], ["export"], ["import"], ["list"]]))
    def check(cmd, rest, sub):
        argv = [cmd, *(sub if cmd == "runs" else []), *rest]
        try:
            code = run(argv)
        except BaseException:  # noqa: BLE001 - anything but a returned exit code is a bug
            pytest.fail(f"mixopt {argv} raised instead of returning an exit code:\n{traceback.format_exc()}")
        assert isinstance(code, int)
        err = capsys.readouterr().err
        if code == 2 and err.startswith("error: "):
            assert len(err.strip().splitlines()) == 1, err

    check()
