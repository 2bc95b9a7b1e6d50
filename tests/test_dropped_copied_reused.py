"""Review of reuse (findings 4, 7, 9): `export --drop` says so in every format; `runs export`/`list` name the runs a
`reuse.store` adds to fit; a byte-for-byte copy of an embedded file keys like the embedded file."""

from __future__ import annotations

import ast
import json
import shutil

import pytest
import yaml

from mixopt.cli.main import run
from mixopt.config import DataConfig, DomainSpec
from mixopt.data.domains import domain_specs, load_domain_set
from mixopt.data.embedded import embedded_path
from mixopt.data.sources import source_keys
from mixopt.export import EXPORTERS, ExportOptions, export_plan
from mixopt.plan import plan_from_dict
from mixopt.runs.driver import data_changes, verbatim_fingerprints
from mixopt.runs.reused import changed_domains, changed_targets
from tests.test_cli_sweep import write_cfg
from tests.test_export import PATHS, plan_dict

# ------------------------------------------------------------------ finding 4: export --drop


def _dropped_plan():
    plan = plan_from_dict(plan_dict(predicted={"metric": "val/code", "value": 2.5}, reasons=["no bound binds"]))
    return plan, plan.without(["math"])


@pytest.mark.parametrize("fmt", sorted(set(EXPORTERS) - {"json"}))
def test_every_trainer_format_says_the_plan_lost_a_domain(fmt):
    plan, cut = _dropped_plan()
    paths = {d: p for d, p in PATHS.items() if d != "math"}
    share = f"math had {plan.overall_weights()['math']:.1%} of the tokens"
    files = export_plan(cut, fmt, paths)
    said = [name for name, text in files.items() if "plan without math" in text and share in text
            and "prediction no longer applies" in text]
    assert said, f"{fmt}: no file names the dropped domain"
    for name, text in files.items():  # still what the trainers parse
        if name.endswith(".yaml"):
            yaml.safe_load(text)
        elif name.endswith(".json"):
            json.loads(text)
        elif name.endswith(".py"):
            ast.parse(text)
    assert not any("plan without" in t for t in export_plan(plan, fmt, PATHS).values())  # a plan as proposed: no word


def test_the_json_export_records_the_drop_and_marks_the_old_reasons():
    _, cut = _dropped_plan()
    body = json.loads(export_plan(cut, "json", {})["plan.json"])
    assert set(body["dropped"]) == {"math"} and "predicted" not in body
    assert body["reasons"][0].startswith("math removed from the plan") and "math had" in body["reasons"][0]
    assert body["reasons"][1] == "before math was removed: no bound binds"
    again = plan_from_dict(body).without(["web"])  # a second drop keeps the first
    assert set(again.dropped) == {"math", "web"} and "plan without math, web" in again.drop_note()
    with pytest.raises(Exception, match="dropped"):
        plan_from_dict({**body, "dropped": {"math": 1.5}})


# ------------------------------------------------------------------ finding 9: a copy of an embedded file

# Keys and data fingerprints mixopt at cc13807 (stop 37) gave the embedded files and a copy of legal.jsonl.gz elsewhere.
OLD_KEYS = {"code": "b9cf54b1489a5dab22c4", "legal": "9d67c5f8b53304788301"}
OLD_COPY_KEY = "8362a4907e3252e94c9f"
OLD_DOMAIN_FPS = {"code": "58314720924296b6262e9576", "legal": "e533e95fdc096837ec7e4c02"}  # max_documents 40
OLD_EMBEDDED_FP, OLD_COPY_FP = "e8fff37c5313da6f", "b12eb00a2c638034"  # include [code, legal] / legal from the copy


def _copy(tmp_path, change=False):
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    copy = folder / "legal.jsonl.gz"
    shutil.copyfile(embedded_path("legal"), copy)
    if change:
        copy.write_bytes(copy.read_bytes() + b"\0")
    return copy


def test_a_copy_of_an_embedded_file_keys_like_it_and_the_old_keys_stay_known(tmp_path):
    embedded = {s.name: s for s in domain_specs(DataConfig(include=["code", "legal"]))}
    copy = DomainSpec(name="legal", path=str(_copy(tmp_path)))
    assert source_keys(copy)[0] == source_keys(embedded["legal"])[0]  # same name and bytes: same key
    assert source_keys(copy)[0] == OLD_COPY_KEY  # what a copy had: its stores keep their key
    for name, spec in embedded.items():
        assert OLD_KEYS[name] in source_keys(spec)[1:]
    assert source_keys(copy)[3] == OLD_KEYS["legal"]  # the copy also knows the embedded file's old key
    changed = DomainSpec(name="legal", path=str(_copy(tmp_path / "x", change=True) if (tmp_path / "x").mkdir() is None else ""))
    assert OLD_KEYS["legal"] not in source_keys(changed) and source_keys(changed)[0] != OLD_COPY_KEY


def test_stores_of_either_kind_resume_and_reuse_across_the_copy(tmp_path):
    cache = str(tmp_path / "cache")
    emb = DataConfig(include=["code", "legal"], max_documents=40, cache_dir=cache)
    cp = DataConfig(include=["code"], domains=[DomainSpec(name="legal", path=str(_copy(tmp_path)))], max_documents=40,
                    cache_dir=cache)
    assert load_domain_set(emb).fingerprint == load_domain_set(cp).fingerprint  # same data, same fingerprint
    for cfg in (emb, cp):  # a store swept before on the embedded corpus, or on the copy, resumes with either config
        for old in (OLD_EMBEDDED_FP, OLD_COPY_FP):
            assert load_domain_set(cfg, store_fingerprint=old).fingerprint == old, (cfg, old)
        data = load_domain_set(cfg)
        old_meta = {"domains": ["code", "legal"], "domain_fingerprints": OLD_DOMAIN_FPS}
        assert data_changes(old_meta, data) == []  # not "domain legal: data changed"
        new_meta = {"domains": data.names, "domain_fingerprints": {n: d.fingerprint for n, d in data.domains.items()},
                    **verbatim_fingerprints(data)}
        assert changed_domains(old_meta, new_meta, "old") == []  # reuse.store: the old runs that trained legal join
    other = DataConfig(include=["code"], domains=[DomainSpec(name="legal", path=str(_copy(tmp_path / "y", change=True)
                                                             if (tmp_path / "y").mkdir() is None else ""))],
                       max_documents=40, cache_dir=cache)
    assert data_changes({"domains": ["code", "legal"], "domain_fingerprints": OLD_DOMAIN_FPS},
                        load_domain_set(other)) == ["domain legal: data changed"]


# An evaluation target (data.targets) on the embedded legal file, as mixopt at cc13807 fingerprinted it (include [code],
# max_documents 40): its fingerprint, and the data fingerprint of that set.
OLD_TARGET_FP, OLD_TARGET_DATA_FP = "dfd7c54530af41a0446f7878", "7000f4f173b4a85d"


def test_an_embedded_target_matches_a_store_swept_before_stop_38(tmp_path):
    """Targets follow the domains' rule: the embedded files' old key is known, store.json records it next to the key
    (target_fingerprints_verbatim), so reuse.store does not call an unchanged target set changed; other bytes still are."""
    cache = str(tmp_path / "cache")
    old_meta = {"domains": ["code"], "domain_fingerprints": {"code": OLD_DOMAIN_FPS["code"]},
                "target_fingerprints": {"lg": OLD_TARGET_FP}}
    for path in (embedded_path("legal"), _copy(tmp_path)):  # the embedded file, and a byte-for-byte copy of it
        cfg = DataConfig(include=["code"], targets=[DomainSpec(name="lg", path=str(path))], max_documents=40, cache_dir=cache)
        assert load_domain_set(cfg, store_fingerprint=OLD_TARGET_DATA_FP).fingerprint == OLD_TARGET_DATA_FP  # resumes
        data = load_domain_set(cfg)
        assert data_changes(old_meta, data) == []
        new_meta = {"domains": data.names, "domain_fingerprints": {n: d.fingerprint for n, d in data.domains.items()},
                    "target_fingerprints": {n: t.fingerprint for n, t in data.targets.items()}, **verbatim_fingerprints(data)}
        assert new_meta["target_fingerprints_verbatim"] == {"lg": OLD_TARGET_FP}
        assert changed_targets(old_meta, new_meta) == [] and changed_targets(new_meta, old_meta) == []
    other = DataConfig(include=["code"], max_documents=40, cache_dir=cache,
                       targets=[DomainSpec(name="lg", path=str(_copy(tmp_path / "y", change=True)
                                                               if (tmp_path / "y").mkdir() is None else ""))])
    data = load_domain_set(other)
    new_meta = {"target_fingerprints": {"lg": data.targets["lg"].fingerprint}, **verbatim_fingerprints(data)}
    assert changed_targets(old_meta, new_meta) == ["lg"]
    assert data_changes(old_meta, data) == ["evaluation target lg (data.targets): data changed"]


# ------------------------------------------------------------------ finding 7: runs export / list on a reuse store


def test_runs_export_and_list_name_the_runs_reuse_store_adds(tmp_path, capsys):
    old = write_cfg(tmp_path, runs=3, data={"include": ["code", "prose"]}).rename(tmp_path / "old.yaml")
    assert run(["sweep", str(old), "--store", str(tmp_path / "s_old")]) == 0
    new = write_cfg(tmp_path, runs=2, reuse={"store": str(tmp_path / "s_old")})
    assert run(["sweep", str(new), "--store", str(tmp_path / "s_new")]) == 0
    n_old = len(list((tmp_path / "s_old" / "runs").glob("*.json")))
    capsys.readouterr()
    assert run(["runs", "export", "--store", str(tmp_path / "s_new"), "--out", str(tmp_path / "new.csv")]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert f"fit also adds {n_old} runs of {tmp_path / 's_old'} (reuse.store), not exported" in out
    assert run(["runs", "list", "--store", str(tmp_path / "s_new")]) == 0
    assert f"fit also adds {n_old} runs of {tmp_path / 's_old'} (reuse.store), not listed here" in \
        capsys.readouterr().out.replace("\n", " ")
    assert run(["runs", "export", "--store", str(tmp_path / "s_old"), "--out", str(tmp_path / "old.csv")]) == 0
    assert "reuse.store" not in capsys.readouterr().out  # a store without reuse.store: no note
    shutil.rmtree(tmp_path / "s_old")  # the earlier store gone: the export still works and says fit cannot read it
    assert run(["runs", "export", "--store", str(tmp_path / "s_new"), "--out", str(tmp_path / "new2.csv")]) == 0
    assert "which fit cannot read now" in capsys.readouterr().out.replace("\n", " ")


def test_exports_of_a_plan_without_a_domain_still_load_in_the_trainers_libraries(tmp_path):
    """The note about the dropped domain sits in comments, JSON strings and docstrings: each library still reads them."""
    from tests.test_export_libs import PLAN, TOKENS_PER_DOC, load_module, write_files

    cut = plan_from_dict(PLAN).without(["xlong"])
    paths = {d: str(tmp_path / "data" / d) for d in TOKENS_PER_DOC if d != "xlong"}
    steps = {"megatron": ExportOptions(global_batch_size=8, seq_length=4096)}  # 13 steps: each phase gets some
    files = {fmt: write_files(export_plan(cut, fmt, paths, options=steps.get(fmt)), tmp_path / fmt)
             for fmt in ("megatron", "olmo-core", "hf-datasets")}
    for root in files.values():
        assert any("plan without xlong" in p.read_text() for p in root.iterdir())
    try:
        from megatron.core.datasets import utils
    except ImportError:
        utils = None
    if utils is not None:
        per_split = json.loads((files["megatron"] / "phase_00.per_split_data_args.json").read_text())
        assert len(utils.get_blend_from_list(per_split["train"])[0]) == 3
    try:
        from olmo_core.data.source_mixture import SourceMixtureList
    except ImportError:
        SourceMixtureList = None
    if SourceMixtureList is not None:
        sources = SourceMixtureList.from_yaml(files["olmo-core"] / "phase_00.yaml")
        sources.validate()
        assert {s.source_name for s in sources.sources} == set(paths)
    pytest.importorskip("datasets")
    hf = load_module(files["hf-datasets"] / "interleave.py", "hf_dropped")
    assert "plan without xlong" in hf.__doc__ and "plan without xlong" in hf.PLAN["probabilities"]
    pytest.importorskip("litdata")
    module = tmp_path / "mixture_litdata.py"
    module.write_text(export_plan(cut, "litdata", paths)["mixture_litdata.py"])
    lit = load_module(module, "litdata_dropped")
    assert "plan without xlong" in lit.__doc__ and set(lit.PHASES[0]["weights"]) == set(paths)
