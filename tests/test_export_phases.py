"""Across phases, does each exporter's trainer continue a domain where the earlier phase stopped?

A two-phase plan (a main phase, then an end-of-training phase that upsamples) with the domain
'once' planned at exactly 1 epoch overall: phase 0 must read its first documents, phase 1 the
rest, none twice. HF datasets is fixed (windows, as litdata) and checked with the real library;
for the trainers that offer no offset (OLMo-core, Megatron, nanotron, MosaicML streaming) the
exports say so plainly, and the real library shows what happens where it is installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from mixopt.export import ExportOptions, export_plan

# The litdata tests' plan: once at 1 epoch (its weight rising in phase 1), twice at 2 (falling), half at 0.5.
from .test_export_litdata import PLAN, PLANNED, UNIQUE
from .test_export_litdata import _load as _load_module


def _write(files: dict[str, str], root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


# ------------------------------------------------------------------ HF datasets (fixed)


@pytest.mark.parametrize("streaming", [False, True], ids=["map-style", "streaming"])
def test_hf_phase_1_continues_each_domain(tmp_path, streaming):
    datasets = pytest.importorskip("datasets", reason="datasets is not installed")
    out = _write(export_plan(PLAN, "hf-datasets", {d: d for d in UNIQUE}), tmp_path / "hf")
    module = _load_module(out / "interleave.py", f"hf_phases_{streaming}")
    data = {d: datasets.Dataset.from_dict({"domain": [d] * n, "i": list(range(n))}) for d, n in UNIQUE.items()}
    load = (lambda p: data[p].to_iterable_dataset()) if streaming else data.__getitem__
    rows = [list(module.build(k, load=load)) for k in range(2)]
    read = [{d: [r["i"] for r in rows[k] if r["domain"] == d] for d in UNIQUE} for k in range(2)]
    for k in range(2):
        for d in UNIQUE:
            assert len(read[k][d]) >= PLANNED[k][d], (k, d, len(read[k][d]))  # one pass holds the planned reading
    once = [read[k]["once"][: PLANNED[k]["once"]] for k in range(2)]
    assert once[0] == list(range(3000)) and once[1] == list(range(3000, 4400))  # 1 epoch: head, then the tail
    assert not set(once[0]) & set(once[1])
    half = [set(read[k]["half"][: PLANNED[k]["half"]]) for k in range(2)]
    assert not half[0] & half[1] and max(half[1]) < 2000  # 0.5 epochs: never the last 2000 rows
    # 2 epochs: phase 0 reads rows 0..1799 then 0..1199, phase 1 the rows 1200..1799 it has not read twice yet
    assert read[1]["twice"][:600] == list(range(1200, 1800))


def test_hf_windows_are_in_the_json(tmp_path):
    meta = json.loads(export_plan(PLAN, "hf-datasets", {d: d for d in UNIQUE})["interleave.json"])
    for phase in meta["phases"]:
        assert len(phase["windows"]) == len(phase["domains"])
    once = [p["windows"][p["domains"].index("once")] for p in meta["phases"]]
    assert once[0]["read"] == [0.0, pytest.approx(3000 / 4400)] and once[1]["read"] == [once[0]["read"][1], 1.0]
    assert once[0]["documents_per_epoch"] == pytest.approx(4400)


# ------------------------------------------------------------------ OLMo-core (documented limitation)


def test_olmo_core_says_phases_restart_and_library_shows_it(tmp_path):
    files = export_plan(PLAN, "olmo-core", {d: str(tmp_path / f"{d}.npy") for d in UNIQUE})
    heads = {name: text for name, text in files.items()}
    seeds = []
    for text in heads.values():
        assert "do NOT continue each domain" in text and "rng.choice" in text
        seeds.append(int(re.search(r"Use seed = (\d+)", text).group(1)))
    assert seeds == [42, 43]
    assert "once [0.681818, 1)" in heads["phase_01.yaml"]

    pytest.importorskip("olmo_core.data.utils", reason="ai2-olmo-core is not installed (pip install 'mixopt[export]')")
    from olmo_core.data.utils import segment_documents_into_instances

    # 'once' as OLMo-core data: 4400 documents of 10 tokens (9 ids then EOS 0), sequence length 10
    path = tmp_path / "once.npy"
    np.tile(np.r_[np.arange(1, 10), 0], UNIQUE["once"]).astype(np.uint16).tofile(path)

    def draws(instances: int, seed: int) -> set[int]:  # what NumpyFSLDatasetMixture keeps of the file
        target = tmp_path / f"idx_{instances}_{seed}.npy"
        segment_documents_into_instances(path, target, max_sequence_length=10, eos_token_id=0, dtype=np.uint16,
                                         indices_dtype=np.uint32, sample=(instances, seed))
        return set(np.memmap(target, dtype=np.uint32, mode="r")[::2].tolist())

    # one seed for both phases: phase 1's 1400 instances are all among phase 0's draws (re-read)
    assert draws(1400, 42) <= draws(3000, 42)
    # and draws are with replacement within a phase: 3000 of 4400 instances drawn reach the coverage the file states
    stated = float(re.search(r"once (\d\.\d+) \(0\.682 epochs drawn\)", heads["phase_00.yaml"]).group(1))
    assert stated == pytest.approx(1 - np.exp(-3000 / 4400), abs=0.005)
    assert len(draws(3000, 42)) / UNIQUE["once"] == pytest.approx(stated, abs=0.03)
    # the seeds the export names make the draws independent: many of phase 1's are new
    assert len(draws(1400, seeds[1]) - draws(3000, seeds[0])) > 300


def test_olmo_core_split_files_keep_phases_disjoint_but_read_less(tmp_path):
    """What the phase files say of splitting a domain's files by phase, through OLMo-core's own draws: 'half' (0.5
    epochs over the run) reads 1 - exp(-0.5) of its data unsplit with the named seeds, 0.63 x 0.5 split."""
    text = export_plan(PLAN, "olmo-core", {d: str(tmp_path / f"{d}.npy") for d in UNIQUE})["phase_00.yaml"]
    assert "keeps phases disjoint but repeats more" in text and "0.63 x of its data" in text
    pytest.importorskip("olmo_core.data.utils", reason="ai2-olmo-core is not installed (pip install 'mixopt[export]')")
    from olmo_core.data.utils import segment_documents_into_instances

    n = UNIQUE["half"]  # documents of 10 tokens (the document's number + 1, then EOS 0), sequence length 10

    def file(name: str, docs: range) -> Path:
        path = tmp_path / f"{name}.npy"
        np.repeat(np.c_[np.array(docs) + 1, np.zeros(len(docs), dtype=int)], [9, 1], axis=1).astype(np.uint16).tofile(path)
        return path

    def draws(path: Path, instances: int, seed: int) -> set[int]:  # the documents NumpyFSLDatasetMixture keeps
        target = tmp_path / f"idx_{path.stem}_{seed}.npy"
        segment_documents_into_instances(path, target, max_sequence_length=10, eos_token_id=0, dtype=np.uint16,
                                         indices_dtype=np.uint32, sample=(instances, seed))
        starts = np.memmap(target, dtype=np.uint32, mode="r")[::2]
        return set((np.fromfile(path, dtype=np.uint16)[starts] - 1).tolist())

    whole = file("whole", range(n))
    unsplit = draws(whole, PLANNED[0]["half"], 42) | draws(whole, PLANNED[1]["half"], 43)
    windows = [range(0, PLANNED[0]["half"]), range(PLANNED[0]["half"], PLANNED[0]["half"] + PLANNED[1]["half"])]
    split = [draws(file(f"phase{k}", w), len(w), 42 + k) for k, w in enumerate(windows)]
    assert all(set(d) <= set(w) for d, w in zip(split, windows))  # disjoint phases
    assert len(unsplit) / n == pytest.approx(1 - np.exp(-0.5), abs=0.02)  # 0.39
    assert len(split[0] | split[1]) / n == pytest.approx((1 - np.exp(-1)) * 0.5, abs=0.02)  # 0.32


# ------------------------------------------------------------------ Megatron (documented limitation)


def test_megatron_says_phases_restart_and_library_shows_it():
    opts = ExportOptions(global_batch_size=1, seq_length=10)  # one document per sample: 10,000 iterations
    meta = json.loads(export_plan(PLAN, "megatron", {d: f"/data/{d}" for d in UNIQUE}, options=opts)["blend.json"])
    assert "do NOT continue each domain" in meta["continuation"]
    p0, p1 = meta["phases"]
    assert p0["samples"]["once"]["planned"] == [0.0, 3000.0] and p1["samples"]["once"]["planned"] == [3000.0, 4400.0]
    assert p1["samples"]["once"]["megatron_reads"] == [4200.0, 5600.0]

    pytest.importorskip("megatron.core.datasets.helpers", reason="megatron-core is not installed (pip install 'mixopt[export]')")
    from megatron.core.datasets import helpers, utils

    total = meta["total_iterations"]
    start = p1["start_iteration"]

    def reads(phase, lo, hi):  # dataset 'once' sample indices of blend positions [lo, hi), as BlendedDataset builds them
        prefixes, weights = utils.get_blend_from_list(phase["data_path"])
        dataset_index = np.zeros(total, dtype=np.int16)
        sample_index = np.zeros(total, dtype=np.int64)
        helpers.build_blending_indices(dataset_index, sample_index, utils.normalize(weights), len(weights), total, False)
        i = prefixes.index("/data/once")
        return sample_index[lo:hi][dataset_index[lo:hi] == i]

    phase0 = reads(p0, 0, start)
    phase1 = reads(p1, start, total)  # resumed: the new blend's first `start` samples are skipped as consumed
    assert (phase0.min(), phase0.max() + 1) == (0, 3000)
    assert abs(phase1.min() - 4200) <= 1 and abs(phase1.max() + 1 - 5600) <= 1  # what blend.json says Megatron reads
    assert phase1.min() > 3000  # rows 3000..4199 are skipped, and 4400.. are a second epoch


# ------------------------------------------------------------------ nanotron and MosaicML streaming (documented)


def test_nanotron_says_how_each_version_runs_stages():
    """nanotron main continues each folder across stage launches; Nanoset-era nanotron restarts each stage. The header
    gives each stage's steps (for main's one launch per stage) and planned reading (for the older one's split folders)."""
    text = export_plan(PLAN, "nanotron", {d: f"/data/{d}" for d in UNIQUE},
                       options=ExportOptions(global_batch_size=1, seq_length=10))["data_stages.yaml"]
    assert "last stage only" in text and "continue each domain" in text and "Nanoset-based" in text
    assert "planned phase_00 (steps 1-7500): " in text and "planned phase_01 (steps 7501-10000): " in text
    assert "once [0.681818, 1)" in text
    stages = yaml.safe_load(text)["data_stages"]
    assert [s["start_training_step"] for s in stages] == [1, 7501]  # each stage starts the step after the last one's
    for stage in stages:  # one folder per domain in every stage: main's per-folder offsets continue it
        assert stage["data"]["dataset"]["dataset_folder"] == [f"/data/{d}" for d in sorted(UNIQUE)]
    assert len(stages) == 2


def test_mosaic_says_phases_redraw():
    from mixopt.export.mosaic import MOSAIC_REREAD

    files = export_plan(PLAN, "mosaic-streaming", {d: f"/data/{d}" for d in UNIQUE})
    for text in files.values():
        assert "do NOT continue each domain" in text and "independent draw" in text and MOSAIC_REREAD in text
        assert set(yaml.safe_load(text)) == {"streams"}
    assert "once [0.681818, 1)" in files["phase_01.yaml"]


def test_megatron_phase_prefix_keeps_phases_disjoint_but_reads_a_shuffle_slice(tmp_path):
    """What blend.json says of a phase's own prefix, through megatron-core's GPTDataset: phase 1's prefix of 'once'
    (its 1,400 planned documents) is sized for the whole run, so the phase reads a slice of a multi-epoch shuffle."""
    opts = ExportOptions(global_batch_size=1, seq_length=10)
    meta = json.loads(export_plan(PLAN, "megatron", {d: f"/data/{d}" for d in UNIQUE}, options=opts)["blend.json"])
    assert "keeps the phases disjoint" in meta["continuation"] and "954 distinct of 1,400" in meta["continuation"]
    pytest.importorskip("megatron.core.datasets.gpt_dataset", reason="megatron-core is not installed (pip install 'mixopt[export]')")
    import types

    import torch
    from megatron.core.datasets import utils
    from megatron.core.datasets.blended_megatron_dataset_builder import _get_size_per_split_per_dataset
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder
    from megatron.core.datasets.utils import Split

    lo, hi = meta["phases"][1]["samples"]["once"]["planned"]
    prefix = str(tmp_path / "once_phase_01")
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.int32)
    for doc in range(int(lo), int(hi)):  # one 9-token document (its number + 1, then EOD 0) per sample (9 tokens + the next one)
        builder.add_document(torch.tensor([doc + 1] * 8 + [0], dtype=torch.int32), [9])
    builder.finalize(prefix + ".idx")
    tokenizer = types.SimpleNamespace(eod=0, pad=0, bos=None, vocab_size=None, unique_identifiers={"class": "null"})
    config = GPTDatasetConfig(random_seed=1234, sequence_length=9, tokenizer=tokenizer, reset_position_ids=False,
                              reset_attention_mask=False, eod_mask_loss=False, create_attention_mask=False)
    read_lo, read_hi = (int(round(x)) for x in meta["phases"][1]["samples"]["once"]["megatron_reads"])
    # the blend sizes each dataset for the whole run, as BlendedMegatronDatasetBuilder does (w x total samples + surplus)
    prefixes, weights = utils.get_blend_from_list(meta["phases"][1]["data_path"])
    sizes = _get_size_per_split_per_dataset(utils.normalize(weights), [meta["total_iterations"] * meta["global_batch_size"]],
                                            surplus=config.mid_level_dataset_surplus)
    requested = sizes[prefixes.index("/data/once")][0]
    assert requested > 4 * (hi - lo)  # a prefix of 1,400 samples spans 5 epochs
    dataset = GPTDataset(IndexedDataset(prefix), prefix, np.arange(int(hi - lo)), requested, Split.train, config)
    docs = [int(dataset[i]["tokens"][0]) - 1 for i in range(read_lo, read_hi)]
    assert len(docs) == hi - lo == 1400
    assert lo <= min(docs) and max(docs) < hi  # only the phase's own documents: disjoint from phase 0's
    assert len(set(docs)) == 954  # the figure the continuation note quotes: some twice, about a third never
