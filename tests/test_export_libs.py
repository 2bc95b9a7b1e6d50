"""Round trips through the trainers' own libraries: parse each export with the
library's loader or classes, let its validation run, sample where it samples, and
compare the realised weights with the plan's token shares.

Each test skips, with the reason, only when its library is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.export import ExportOptions, export_plan
from mixopt.export.megatron import dataset_prefix
from mixopt.export.semantics import token_shares_from_docs

# Very different document lengths, so a missing token -> document conversion shows.
TOKENS_PER_DOC = {"short": 50, "mid": 300, "long": 1000, "xlong": 2000}
PLAN = {
    "budget_tokens": 400_000,
    "phases": [
        {"start_fraction": 0.0, "weights": {"short": 0.05, "mid": 0.15, "long": 0.3, "xlong": 0.5}},
        {"start_fraction": 0.75, "weights": {"short": 0.4, "mid": 0.3, "long": 0.2, "xlong": 0.1}},
    ],
    "tokens_per_doc": TOKENS_PER_DOC,
}
N_SAMPLES = 20_000
TOLERANCE = 0.02  # realised token shares must be within 2 percentage points of the plan

STREAMING_MISSING = (
    "mosaicml-streaming is not installed: it needs torchvision and transformers<5 (so huggingface-hub<1 and datasets<5); "
    "run these tests in a venv of its own (pyproject.toml says how); the schema test still runs"
)


def write_files(files: dict[str, str], root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def token_shares(rows) -> dict[str, float]:
    tokens: Counter = Counter()
    for row in rows:
        tokens[row["domain"]] += row["n_tokens"]
    total = sum(tokens.values())
    return {d: t / total for d, t in tokens.items()}


def assert_close_shares(got: dict[str, float], want: dict[str, float], tol: float = TOLERANCE) -> None:
    assert set(got) == set(want), (got, want)
    worst = max(abs(got[d] - want[d]) for d in want)
    assert worst <= tol, f"realised token shares {got} differ from the plan {want} by {worst:.4f}"


# ------------------------------------------------------------------ megatron-core


def test_megatron_blend_round_trip(tmp_path):
    utils = pytest.importorskip("megatron.core.datasets.utils", reason="megatron-core is not installed (pip install 'mixopt[export]')")
    from megatron.core.datasets import helpers
    from megatron.core.datasets.blended_megatron_dataset_config import BlendedMegatronDatasetConfig

    paths = {d: f"/data/{d}.bin" for d in TOKENS_PER_DOC}
    steps = ExportOptions(global_batch_size=8, seq_length=4096)  # 400k tokens: 13 steps, so each phase gets some
    out = write_files(export_plan(PLAN, "megatron", paths, options=steps), tmp_path / "megatron")
    meta = json.loads((out / "blend.json").read_text())
    for phase, raw in zip(meta["phases"], PLAN["phases"]):
        direct = utils.get_blend_from_list(phase["data_path"])
        # --data-args-path: Megatron-LM reads the file with f.read().split()
        from_txt = utils.get_blend_from_list((out / phase["data_args_path"]).read_text().split())
        # --per-split-data-args-path: Megatron-LM json.loads it and parses each split
        per_split = json.loads((out / phase["per_split_data_args_path"]).read_text())
        blend_per_split = [utils.get_blend_from_list(per_split[s]) for s in ("train", "valid", "test")]
        assert direct == from_txt == blend_per_split[0]
        prefixes, weights = direct
        assert prefixes == [dataset_prefix(paths[d]) for d in sorted(raw["weights"])]
        assert dict(zip(prefixes, weights)) == pytest.approx({f"/data/{d}": w for d, w in raw["weights"].items()})
        BlendedMegatronDatasetConfig(random_seed=1, sequence_length=4096, blend=direct, split="99,1,0")
        BlendedMegatronDatasetConfig(random_seed=1, sequence_length=4096, blend_per_split=blend_per_split)
        # Megatron's BlendedDataset index: which dataset each fixed-length sample comes from.
        size = 100_000
        dataset_index = np.zeros(size, dtype=np.int16)
        sample_index = np.zeros(size, dtype=np.int64)
        helpers.build_blending_indices(dataset_index, sample_index, utils.normalize(weights), len(weights), size, False)
        realised = np.bincount(dataset_index, minlength=len(weights)) / size
        assert dict(zip(sorted(raw["weights"]), realised)) == pytest.approx(raw["weights"], abs=1e-4)


def _megatron_flags(args: str) -> dict[str, str]:
    words = args.split()
    return dict(zip(words[::2], words[1::2]))


def test_megatron_phases_keep_one_lr_schedule_and_resume(tmp_path):
    """Each phase's megatron_args give megatron-core's scheduler one decay over the whole run, and the resume loads."""
    pytest.importorskip("megatron.core.optimizer_param_scheduler", reason="megatron-core is not installed (pip install 'mixopt[export]')")
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    meta = json.loads(export_plan(PLAN, "megatron", {d: f"/data/{d}" for d in TOKENS_PER_DOC},
                                  options=ExportOptions(global_batch_size=8, seq_length=4096))["blend.json"])
    gbs, total = meta["global_batch_size"], meta["total_iterations"]

    class Optimizer:  # the scheduler only sets each param group's lr and weight decay
        def __init__(self):
            self.param_groups = [{}]

    def scheduler(train_iters: int, decay_iters: int) -> OptimizerParamScheduler:
        # Megatron-LM's get_optimizer_param_scheduler: steps are iterations x global batch size; the
        # --use-checkpoint-opt_param-scheduler / --override-opt_param-scheduler flags are off by default
        return OptimizerParamScheduler(
            Optimizer(), init_lr=0.0, max_lr=3e-4, min_lr=3e-5, lr_warmup_steps=2 * gbs, lr_decay_steps=decay_iters * gbs,
            lr_decay_style="cosine", start_wd=0.1, end_wd=0.1, wd_incr_steps=train_iters * gbs, wd_incr_style="constant",
            use_checkpoint_opt_param_scheduler=False, override_opt_param_scheduler=False,
        )

    whole = scheduler(total, total)  # the schedule of one uninterrupted run
    state, lrs = None, []
    for phase in meta["phases"]:
        args = _megatron_flags(phase["megatron_args"])
        assert args["--data-args-path"] == phase["data_args_path"]
        current = scheduler(int(args["--train-iters"]), int(args["--lr-decay-iters"]))
        if state is not None:
            current.load_state_dict(state)  # asserts that the decay steps match the checkpoint's
        stop = int(args.get("--exit-interval", args["--train-iters"]))
        assert stop == phase["end_iteration"]
        for _ in range(phase["start_iteration"], stop):
            current.step(gbs)
            whole.step(gbs)
            lrs.append((current.get_lr({}), whole.get_lr({})))
        state = current.state_dict()
    assert len(lrs) == total and all(a == pytest.approx(b) for a, b in lrs)
    assert lrs[meta["phases"][0]["end_iteration"] - 1][0] > 3e-5 + 1e-9  # phase 0 does not decay to min_lr
    assert lrs[-1][0] == pytest.approx(3e-5)


# ------------------------------------------------------------------ ai2-olmo-core


def _olmo_source_files(tmp_path: Path, available: dict[str, int]) -> dict[str, str]:
    paths = {}
    for domain, n_tokens in available.items():
        path = tmp_path / f"{domain}.npy"
        np.arange(n_tokens, dtype=np.uint16).tofile(path)  # OLMo-core counts tokens from the file size
        paths[domain] = str(path)
    return paths


def test_olmo_core_source_mixture_round_trip(tmp_path):
    pytest.importorskip("olmo_core.data.source_mixture", reason="ai2-olmo-core is not installed (pip install 'mixopt[export]')")
    from olmo_core.data.source_mixture import SourceMixtureDatasetConfig, SourceMixtureList
    from olmo_core.exceptions import OLMoConfigurationError

    from mixopt.plan import plan_from_dict

    available = {"short": 60_000, "mid": 100_000, "long": 150_000, "xlong": 120_000}
    plan = plan_from_dict(PLAN)
    used = {d: 0.0 for d in available}
    for phase, frac in zip(plan.phases, plan.phase_fractions()):
        for d, w in phase.weights.items():
            used[d] += frac * w * plan.budget_tokens
    raw = dict(PLAN, epochs={d: used[d] / available[d] for d in available})  # xlong needs 1.33 epochs
    out = write_files(export_plan(raw, "olmo-core", _olmo_source_files(tmp_path, available)), tmp_path / "olmo")

    seq = 256
    for phase, frac in zip(plan.phases, plan.phase_fractions()):
        path = out / f"phase_{plan.phases.index(phase):02d}.yaml"
        source_list = SourceMixtureList.from_yaml(path)
        source_list.validate()
        for source in source_list.sources:
            source.validate()
        assert {s.source_name: s.target_ratio for s in source_list.sources} == pytest.approx(phase.weights)
        config = SourceMixtureDatasetConfig(
            source_list=source_list, requested_tokens=int(frac * plan.budget_tokens), global_batch_size=seq * 8, render_tables=False, quiet=True
        )
        config.validate()
        mixture = config.build(npdtype=np.uint16, sequence_length=seq)
        got = {s.name: sum(p.tokens for p in s.path_tokens) for s in mixture.sources}
        total = sum(got.values())
        assert_close_shares({d: t / total for d, t in got.items()}, phase.weights, tol=0.01)

    # The exported max_repetition_ratio is what lets OLMo-core repeat xlong as planned.
    source_list = SourceMixtureList.from_yaml(out / "phase_00.yaml")
    for s in source_list.sources:
        s.max_repetition_ratio = 1.0
    config = SourceMixtureDatasetConfig(source_list=source_list, requested_tokens=300_000, global_batch_size=seq * 8, render_tables=False, quiet=True)
    with pytest.raises(OLMoConfigurationError, match="Insufficient tokens for source: xlong"):
        config.build(npdtype=np.uint16, sequence_length=seq)


# ------------------------------------------------------------------ mosaicml-streaming

# streaming.Stream(*, remote, local, split, proportion, repeat, choose, download_retry,
# download_timeout, validate_hash, keep_zip): its documented constructor arguments.
STREAM_ARGS = {"remote", "local", "split", "proportion", "repeat", "choose", "download_retry", "download_timeout", "validate_hash", "keep_zip"}


def _mosaic_streams(tmp_path: Path, paths: dict[str, str] | None = None):
    paths = paths or {"short": "s3://bucket/short", "mid": "/data/mid", "long": "gs://b/long", "xlong": "/data/xlong"}
    out = write_files(export_plan(PLAN, "mosaic-streaming", paths), tmp_path / "mosaic")
    return paths, [yaml.safe_load((out / f"phase_{i:02d}.yaml").read_text())["streams"] for i in range(len(PLAN["phases"]))]


def test_mosaic_streams_match_stream_schema(tmp_path):
    from mixopt.export.mosaic import DEFAULT_LOCAL_CACHE

    paths, phases = _mosaic_streams(tmp_path)
    for streams, raw in zip(phases, PLAN["phases"]):
        assert set(streams) == set(raw["weights"])
        for name, entry in streams.items():
            assert set(entry) <= STREAM_ARGS, entry
            assert isinstance(entry["local"], str)
            assert ("remote" in entry) == ("://" in paths[name])  # a remote stream caches under its own local folder
            if "remote" in entry:
                assert entry["remote"] == paths[name] and entry["local"].startswith(f"{DEFAULT_LOCAL_CACHE}/{name}-")
            else:
                assert entry["local"] == paths[name]
            assert not {"repeat", "choose"} & set(entry)  # proportion, repeat and choose are exclusive
            assert isinstance(entry["proportion"], float) and 0 < entry["proportion"] <= 1
        proportions = {name: entry["proportion"] for name, entry in streams.items()}
        assert sum(proportions.values()) == 1.0
        # proportion weights samples (documents): convert back to token shares
        assert token_shares_from_docs(proportions, TOKENS_PER_DOC) == pytest.approx(raw["weights"], abs=1e-6)
    locals_ = [{n: e["local"] for n, e in streams.items()} for streams in phases]
    assert locals_[0] == locals_[1] and len(set(locals_[0].values())) == len(locals_[0])  # same per phase, one per domain


def test_mosaic_streams_construct_real_streams_in_every_phase(tmp_path, monkeypatch):
    """Each phase's streams build, remote ones included: without the exported `local`, a second phase's Stream of the
    same remote raised FileExistsError (its derived temp folder exists), as would a restarted job's."""
    streaming = pytest.importorskip("streaming", reason=STREAMING_MISSING)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # Stream's own temp folders, should one be derived
    _, phases = _mosaic_streams(tmp_path)
    for _ in range(2):  # a restarted job builds them again
        for streams in phases:
            built = {name: streaming.Stream(**entry) for name, entry in streams.items()}
            assert {n: s.proportion for n, s in built.items()} == {n: e["proportion"] for n, e in streams.items()}
            assert {n: s.local for n, s in built.items()} == {n: e["local"] for n, e in streams.items()}


def test_mosaic_export_refuses_one_folder_for_two_streams():
    """Two domains at one folder: StreamingDataset raises 'Reused local directory', so the export refuses it first."""
    from mixopt.errors import ExportError

    shared = {"short": "/data/one", "mid": "file:///data/one/", "long": "/data/long", "xlong": "s3://b/xlong"}
    with pytest.raises(ExportError, match="mid and short .*Reused local directory") as err:
        export_plan(PLAN, "mosaic-streaming", shared)
    assert "\n" not in str(err.value)


def test_streaming_refuses_one_folder_for_two_streams(tmp_path):
    """Why the export refuses it: StreamingDataset raises on two streams with one local folder."""
    streaming = pytest.importorskip("streaming", reason=STREAMING_MISSING)
    folder = tmp_path / "one"
    with streaming.MDSWriter(out=str(folder), columns={"i": "int"}) as writer:
        writer.write({"i": 0})
    with pytest.raises(ValueError, match="Reused local directory"):
        streaming.StreamingDataset(streams=[streaming.Stream(local=str(folder), proportion=0.5),
                                            streaming.Stream(local=str(folder), proportion=0.5)], batch_size=1)


MOSAIC_DOCS = {"short": 4000, "mid": 3000, "long": 2000, "xlong": 2000}  # documents written per domain
MOSAIC_READ = 6000  # documents each phase reads


def test_mosaic_streaming_reads_planned_shares_and_redraws_each_phase(tmp_path):
    """Through StreamingDataset over real MDS shards: each phase reads the planned token shares, and phase 1 re-reads
    phase 0's documents as often as an independent draw would (what the phase files and MOSAIC_REREAD say)."""
    streaming = pytest.importorskip("streaming", reason=STREAMING_MISSING)
    from mixopt.export.mosaic import MOSAIC_REREAD

    paths = {}
    for domain, n_docs in MOSAIC_DOCS.items():
        out = tmp_path / "data" / domain
        columns = {"domain": "str", "n_tokens": "int", "i": "int"}
        with streaming.MDSWriter(out=str(out), columns=columns, size_limit=1 << 20) as writer:
            for i in range(n_docs):
                writer.write({"domain": domain, "n_tokens": TOKENS_PER_DOC[domain], "i": i})
        paths[domain] = str(out)
    _, phases = _mosaic_streams(tmp_path, paths)
    read = []
    for streams, raw in zip(phases, PLAN["phases"]):
        dataset = streaming.StreamingDataset(streams=[streaming.Stream(**e) for e in streams.values()], shuffle=True,
                                             shuffle_seed=7, batch_size=1)
        rows = []
        for row in dataset:
            rows.append({"domain": row["domain"], "n_tokens": int(row["n_tokens"]), "i": int(row["i"])})
            if len(rows) == MOSAIC_READ:
                break
        del dataset
        assert token_shares(rows) == pytest.approx(raw["weights"], abs=TOLERANCE)
        read.append(rows)
    figures = {}
    for domain, n_docs in MOSAIC_DOCS.items():
        first, second = ({r["i"] for r in rows if r["domain"] == domain} for rows in read)
        both, expected = len(first & second), len(first) * len(second) / n_docs
        figures[domain] = (f"a domain read at {len(first):,} and {len(second):,} of its {n_docs:,} documents in two phases "
                           f"had {both} read in both, where an independent draw expects {expected:.0f}")
        # an independent draw's overlap: not 0 (phases continued) nor all of the smaller set (phases restarted)
        assert both > 0 and abs(both - expected) <= 4 * math.sqrt(expected) + 2, (domain, both, expected)
        assert len(first) - both > 4 * math.sqrt(expected) + 2, (domain, both, len(first))
    if streaming.__version__ == "0.13.0":  # the figure the docs quote
        assert MOSAIC_REREAD == figures["mid"], figures


# ------------------------------------------------------------------ litdata


def _litdata_item(row):
    return {"domain": row[0], "n_tokens": row[1], "i": row[2]}


def test_litdata_module_samples_planned_token_shares(tmp_path, monkeypatch):
    litdata = pytest.importorskip("litdata", reason="litdata is not installed (pip install 'mixopt[export]')")
    monkeypatch.setenv("DATA_OPTIMIZER_CACHE_FOLDER", str(tmp_path / "cache" / "chunks"))  # not /tmp/chunks
    monkeypatch.setenv("DATA_OPTIMIZER_DATA_CACHE_FOLDER", str(tmp_path / "cache" / "data"))

    # Each stream holds what its phase trains (+5%): a budget whose phase 0 holds > N_SAMPLES documents (24,600).
    plan = {**PLAN, "budget_tokens": 16_000_000}
    phase = plan["phases"][0]
    probe = export_plan(plan, "litdata", {d: "/x" for d in TOKENS_PER_DOC})["mixture_litdata.py"]
    (tmp_path / "probe.py").write_text(probe)
    item_shares = load_module(tmp_path / "probe.py", "probe_mixture").PHASES[0]["weights"]
    paths = {}
    for domain, n_tokens in TOKENS_PER_DOC.items():
        # iterate_over_all=False stops at the first exhausted dataset: give each enough items.
        n_items = math.ceil(1.3 * N_SAMPLES * item_shares[domain]) + 50
        out = tmp_path / "data" / domain
        litdata.optimize(
            fn=_litdata_item, inputs=[(domain, n_tokens, i) for i in range(n_items)], output_dir=str(out),
            chunk_size=5_000, num_workers=1, start_method="fork",
        )
        paths[domain] = str(out)
    module_path = tmp_path / "mixture_litdata.py"
    module_path.write_text(export_plan(plan, "litdata", paths)["mixture_litdata.py"])
    module = load_module(module_path, "exported_mixture")
    dataset = module.build(0)
    assert isinstance(dataset, litdata.CombinedStreamingDataset)
    rows = []
    for row in dataset:
        rows.append(row)
        if len(rows) == N_SAMPLES:
            break
    assert len(rows) == N_SAMPLES
    assert_close_shares(token_shares(rows), phase["weights"])


def _litdata_doc(row):
    return {"domain": row[0], "i": row[1]}


def test_litdata_one_pass_realises_planned_repetition(tmp_path, monkeypatch):
    """A pass ends when the first stream runs out: the planned 3 epochs of 'small' must not cut 'large' short."""
    litdata = pytest.importorskip("litdata", reason="litdata is not installed (pip install 'mixopt[export]')")
    monkeypatch.setenv("DATA_OPTIMIZER_CACHE_FOLDER", str(tmp_path / "cache" / "chunks"))
    monkeypatch.setenv("DATA_OPTIMIZER_DATA_CACHE_FOLDER", str(tmp_path / "cache" / "data"))
    docs = {"small": 100, "large": 300}  # 10 tokens per document each
    paths = {}
    for domain, n in docs.items():
        out = tmp_path / "data" / domain
        litdata.optimize(fn=_litdata_doc, inputs=[(domain, i) for i in range(n)], output_dir=str(out), chunk_size=1000,
                         num_workers=1, start_method="fork")
        paths[domain] = str(out)
    # 6000 tokens, half each: 300 documents of each, so 'small' is gone through 3 times and 'large' once
    plan = {"budget_tokens": 6000, "phases": [{"start_fraction": 0.0, "weights": {"small": 0.5, "large": 0.5}}],
            "epochs": {"small": 3.0, "large": 1.0}, "tokens_per_doc": {"small": 10, "large": 10}}
    module_path = tmp_path / "mixture_litdata.py"
    module_path.write_text(export_plan(plan, "litdata", paths)["mixture_litdata.py"])
    module = load_module(module_path, "repeated_mixture")
    rows = list(module.build(0))
    assert len(rows) >= 600, Counter(r["domain"] for r in rows)  # one pass holds the planned 600 documents
    planned = rows[:600]
    large = [r["i"] for r in planned if r["domain"] == "large"]
    small = [r["i"] for r in planned if r["domain"] == "small"]
    assert abs(len(large) - 300) <= 30 and len(set(large)) == len(large)  # 'large' is read once, not replayed
    assert len(set(small)) == docs["small"] and len(small) >= 270  # 'small' is repeated as planned
    assert len({r["i"] for r in rows if r["domain"] == "large"}) == docs["large"]
    # 1 and 3 epochs, then a spare of 4 standard deviations of the 300 planned documents (more than the 5% margin)
    assert module.PHASES[0]["repeat"] == {"large": 1.230940, "small": 3.692820}


# ------------------------------------------------------------------ HF datasets


def _hf_build(tmp_path: Path, rows_per_domain: dict[str, int], **opts):
    from datasets import Dataset

    paths = {d: f"local/{d}" for d in TOKENS_PER_DOC}
    # Each phase reads its window of every domain, about what it trains: a budget whose phase 0 holds > N_SAMPLES
    # documents (24,600).
    plan = {**PLAN, "budget_tokens": 16_000_000}
    out = write_files(export_plan(plan, "hf-datasets", paths, options=ExportOptions(**opts)), tmp_path / "hf")
    by_path = {
        paths[d]: Dataset.from_dict({"domain": [d] * rows_per_domain[d], "n_tokens": [TOKENS_PER_DOC[d]] * rows_per_domain[d]})
        for d in TOKENS_PER_DOC
    }
    snippet = load_module(out / "interleave.py", f"interleave_{opts.get('stopping_strategy', 'default')}")
    return snippet.PLAN, snippet.build(0, load=by_path.__getitem__)


@pytest.mark.parametrize("strategy", ["all_exhausted", "first_exhausted"])
def test_hf_interleave_realises_planned_token_shares(tmp_path, strategy):
    pytest.importorskip("datasets", reason="datasets is not installed")
    if strategy == "all_exhausted":
        # Sampling runs at the exported probabilities until every dataset has been
        # seen once (restarting exhausted ones), so modest datasets give > 20k draws.
        rows = {d: 5_000 for d in TOKENS_PER_DOC}
        plan, mixed = _hf_build(tmp_path, rows)
    else:
        # Stops when the first dataset runs out: each needs more rows than its share of the draws.
        probe, _ = _hf_build(tmp_path / "probe", {d: 1 for d in TOKENS_PER_DOC})
        p = dict(zip(probe["phases"][0]["domains"], probe["phases"][0]["probabilities"]))
        rows = {d: math.ceil(1.3 * N_SAMPLES * p[d]) + 50 for d in TOKENS_PER_DOC}
        plan, mixed = _hf_build(tmp_path, rows, stopping_strategy=strategy)
    assert plan["phases"][0]["stopping_strategy"] == strategy
    assert len(mixed) >= N_SAMPLES
    sample = mixed.select(range(N_SAMPLES))
    assert_close_shares(token_shares(sample), PLAN["phases"][0]["weights"])


def test_hf_interleave_without_conversion_would_be_wrong(tmp_path):
    """Negative control: using token shares as probabilities misses the plan by far."""
    from datasets import Dataset, interleave_datasets

    weights = PLAN["phases"][0]["weights"]
    domains = sorted(weights)
    sets = [Dataset.from_dict({"domain": [d] * 5_000, "n_tokens": [TOKENS_PER_DOC[d]] * 5_000}) for d in domains]
    mixed = interleave_datasets(sets, probabilities=[weights[d] for d in domains], seed=42, stopping_strategy="all_exhausted")
    got = token_shares(mixed.select(range(N_SAMPLES)))
    assert max(abs(got[d] - weights[d]) for d in domains) > 0.15


# ------------------------------------------------------------------ nanotron


def test_nanotron_stage_args_construct(tmp_path):
    config = pytest.importorskip(
        "nanotron.config", reason="nanotron is not installed; its data_stages schema is checked without it in tests/test_export.py"
    )
    steps = ExportOptions(global_batch_size=8, seq_length=4096)
    text = export_plan(PLAN, "nanotron", {d: str(tmp_path / d) for d in TOKENS_PER_DOC}, options=steps)["data_stages.yaml"]
    for stage in yaml.safe_load(text)["data_stages"]:
        data = stage["data"]
        args = config.DatasetStageArgs(
            name=stage["name"],
            start_training_step=stage["start_training_step"],
            data=config.DataArgs(dataset=config.NanosetDatasetsArgs(**data["dataset"]), seed=data["seed"], num_loading_workers=data["num_loading_workers"]),
        )
        assert len(args.data.dataset.dataset_folder) == len(args.data.dataset.dataset_weights)


# The exported loader picks the builder by the kind of path (issue 16, finding 7).

LOADER_ROWS = 6


def _rows(domain: str) -> list[dict]:
    return [{"domain": domain, "n_tokens": TOKENS_PER_DOC[domain], "i": i} for i in range(LOADER_ROWS)]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _data_of_every_kind(root: Path) -> dict[str, str]:
    """One domain per kind of path: a .jsonl file, a .jsonl.gz file, a directory, a glob (and a save_to_disk dir)."""
    import gzip

    from datasets import Dataset

    root.mkdir()
    (root / "short.jsonl").write_text(_jsonl(_rows("short")))
    with gzip.open(root / "mid.jsonl.gz", "wt") as fh:
        fh.write(_jsonl(_rows("mid")))
    (root / "long").mkdir()
    rows = _rows("long")
    (root / "long" / "part-0.jsonl").write_text(_jsonl(rows[:3]))
    (root / "long" / "part-1.jsonl").write_text(_jsonl(rows[3:]))
    (root / "xlong_shards").mkdir()
    rows = _rows("xlong")
    for k in range(2):
        (root / "xlong_shards" / f"shard-{k}.jsonl").write_text(_jsonl(rows[3 * k : 3 * k + 3]))
    (root / "xlong_shards" / "README.md").write_text("not data: the glob must skip me\n")
    Dataset.from_list(_rows("short")).save_to_disk(str(root / "saved"))
    return {
        "short": str(root / "short.jsonl"),
        "mid": str(root / "mid.jsonl.gz"),
        "long": str(root / "long"),
        "xlong": str(root / "xlong_shards" / "shard-*.jsonl"),
    }


@pytest.fixture()
def hf_offline(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="datasets is not installed")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")  # not ~/.cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return datasets


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "map-style"])
def test_hf_loader_reads_file_gz_directory_glob_and_saved(tmp_path, hf_offline, streaming):
    paths = _data_of_every_kind(tmp_path / "data")
    out = write_files(export_plan(PLAN, "hf-datasets", paths), tmp_path / "hf")
    module = load_module(out / "interleave.py", f"interleave_kinds_{streaming}")
    for domain, path in {**paths, "saved": str(tmp_path / "data" / "saved")}.items():
        ds = module.load(path, streaming=streaming)
        assert isinstance(ds, hf_offline.IterableDataset if streaming else hf_offline.Dataset), (domain, type(ds))
        want = _rows("short" if domain == "saved" else domain)
        assert sorted(ds, key=lambda r: r["i"]) == want, domain
    mixed = list(module.build(0))  # default loader, streaming, all_exhausted: every row of every domain at least once
    seen = Counter((r["domain"], r["i"]) for r in mixed)
    assert set(seen) == {(d, i) for d in TOKENS_PER_DOC for i in range(LOADER_ROWS)}


def test_hf_loader_errors_name_the_path(tmp_path, hf_offline):
    out = write_files(export_plan(PLAN, "hf-datasets", {d: f"/nowhere/{d}.jsonl" for d in TOKENS_PER_DOC}), tmp_path / "hf")
    module = load_module(out / "interleave.py", "interleave_errors")
    with pytest.raises(FileNotFoundError, match="/nowhere/short.jsonl"):
        module.load("/nowhere/short.jsonl")
    (tmp_path / "blob.bin").write_text("{}\n")
    with pytest.raises(ValueError, match="file format"):
        module.load(str(tmp_path / "blob.bin"))
    assert module.builder_of("a/b.JSONL.gz") == "json" and module.builder_of("x.parquet") == "parquet"
    assert module.builder_of("corpus.txt.zst") == "text" and module.builder_of("org/name") is None
