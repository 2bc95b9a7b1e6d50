"""`mixopt score`: readable at 80 columns, honest field names, a live --budget-tokens, --text-field, and errors that name the flag."""

import json
import warnings

import pytest
from rich.console import Console

from mixopt.cli.cmd_score import score_table
from mixopt.cli.main import run
from mixopt.projector.scoring import score_pools
from tests.test_selection import VOCAB_A, VOCAB_B, docs_from


@pytest.fixture()
def data(tmp_path):
    def write(name, docs, field="text"):
        p = tmp_path / name
        p.write_text("".join(json.dumps({field: d}) + "\n" for d in docs))
        return p

    plan = tmp_path / "plan.yaml"
    plan.write_text("budget_tokens: 100000\nphases:\n- start_fraction: 0.0\n  weights: {code: 0.5, prose: 0.5}\n")
    return {"a": write("a.jsonl", docs_from(VOCAB_A, 12, 1)), "b": write("b.jsonl", docs_from(VOCAB_B, 12, 2)),
            "t": write("t.jsonl", docs_from(VOCAB_A, 8, 3)), "body": write("body.jsonl", docs_from(VOCAB_A, 8, 4), field="body"),
            "plan": plan}


def test_table_fits_80_columns_without_cutting_headers(data):
    rows = score_pools({"alpha-pool": docs_from(VOCAB_A, 6, 1), "beta": docs_from(VOCAB_B, 6, 2)}, docs_from(VOCAB_A, 5, 3),
                       base_docs={"code": docs_from(VOCAB_B, 5, 4)}, budget_tokens=1e6)
    console = Console(width=80, record=True)
    console.print(score_table(rows, str(data["t"]), 1e6))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for header in ("OT dist", "best w", "OT at w", "tokens", "epochs"):
        assert header in text


def test_fields_say_what_the_metric_is_and_budget_changes_the_output(data, capsys):
    def score(budget):
        assert run(["score", "--pool", f"a={data['a']}", "--pool", f"b={data['b']}", "--target", str(data["t"]),
                    "--budget-tokens", budget, "--json"]) == 0
        return {r["pool"]: r for r in json.loads(capsys.readouterr().out)}

    small, big = score("1e6"), score("1e9")
    for r in small.values():
        assert r["projected_by"] == "ot" and r["blend_ot_distance"] == r["projected_metric"] and r["predicted_metric"] is None
    assert small["a"]["ot_distance"] < small["b"]["ot_distance"]
    assert big["a"]["epochs_at_budget"] == pytest.approx(1000 * small["a"]["epochs_at_budget"])
    assert small["a"]["tokens_at_budget"] == pytest.approx(1e6 * small["a"]["best_weight"])


def test_text_field_option_reads_another_field(data, capsys):
    args = ["score", "--pool", f"a={data['body']}", "--target", str(data["t"]), "--json"]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert "'text' field" in err and "--text-field" in err and "['body']" in err
    assert run(["score", "--pool", f"a={data['body']}", "--target", str(data["body"]), "--text-field", "body", "--json"]) == 0


def test_paths_typo_names_the_unknown_and_the_known_domains(data, capsys):
    code = run(["score", "--pool", f"a={data['a']}", "--target", str(data["t"]), "--base-mixture", str(data["plan"]),
                "--paths", f"wbe={data['b']}"])
    err = capsys.readouterr().err
    assert code == 2 and "['wbe']" in err and "['code', 'prose']" in err and len(err.strip().splitlines()) == 1


def test_a_missing_command_line_path_names_the_flag_not_the_config(data, tmp_path, capsys):
    assert run(["score", "--pool", f"web={tmp_path / 'nope.jsonl'}", "--target", str(data["t"])]) == 2
    err = capsys.readouterr().err
    assert "--pool web=" in err and "Fix the path after --pool" in err and "config" not in err
    assert run(["score", "--pool", f"a={data['a']}", "--target", str(tmp_path / "none.jsonl")]) == 2
    assert "Fix the path after --target" in capsys.readouterr().err


def test_max_docs_takes_a_seeded_sample_of_the_whole_file(data, tmp_path, monkeypatch, capsys):
    from mixopt.cli import cmd_score

    ordered = tmp_path / "ordered.jsonl"  # sorted by source: 30 documents of A, then 30 of B
    ordered.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs_from(VOCAB_A, 30, 5) + docs_from(VOCAB_B, 30, 6)))
    seen = []
    monkeypatch.setattr(cmd_score, "score_pools", lambda docs, *a, **k: seen.append(docs["p"]) or [])

    def sample(*extra):
        assert run(["score", "--pool", f"p={ordered}", "--target", str(data["t"]), "--max-docs", "10", "--json", *extra]) == 0
        capsys.readouterr()
        return seen[-1]

    first = sample()
    from_b = [d.split()[0] in VOCAB_B for d in first]
    assert len(first) == 10 and any(from_b) and not all(from_b)  # from the whole file, not just its head
    order = docs_from(VOCAB_A, 30, 5) + docs_from(VOCAB_B, 30, 6)
    assert [order.index(d) for d in first] == sorted(order.index(d) for d in first)  # in file order
    assert sample() == first and sample("--seed", "1") != first  # seeded


def test_unique_tokens_of_a_sample_are_scaled_to_the_whole_file(data, tmp_path, capsys):
    """review-select #2: --max-docs sampled 40 of 160 documents and reported the sample's tokens as the pool's."""
    docs = docs_from(VOCAB_A, 60, 7)  # 40 words each: every document about the same length
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    whole = sum(len(d.encode()) + 1 for d in docs)  # byte tokens and an end-of-document token

    def score(*extra):
        assert run(["score", "--pool", f"p={pool}", "--target", str(data["t"]), "--budget-tokens", "1e6", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)[0]

    full, part = score(), score("--max-docs", "15")
    assert full["unique_tokens_estimate"] == whole and full["n_docs_pool"] == 60 and "all 60" in full["unique_tokens_basis"]
    assert part["n_docs_sampled"] == 15 and part["n_docs_pool"] == 60
    assert part["unique_tokens_estimate"] == pytest.approx(whole, rel=0.05)  # was whole / 4
    assert part["epochs_at_budget"] == pytest.approx(full["epochs_at_budget"], rel=0.05)
    assert "15 sampled" in part["unique_tokens_basis"] and "60 records" in part["unique_tokens_basis"]
    declared = score("--max-docs", "15", "--pool-docs", "p=6000")  # --pool-docs still overrides (a file that is a sample)
    assert declared["n_docs_pool"] == 6000 and declared["unique_tokens_estimate"] == pytest.approx(100 * whole, rel=0.05)
    assert "--pool-docs" in declared["unique_tokens_basis"]


def test_the_table_shows_sampled_and_pool_documents(data):
    rows = score_pools({"p": docs_from(VOCAB_A, 6, 1)}, docs_from(VOCAB_A, 5, 3), pool_doc_counts={"p": 6000})
    console = Console(width=80, record=True)
    console.print(score_table(rows, str(data["t"]), None))
    text = console.export_text()
    assert "6/6k" in text and "scaled to the pool's documents" in " ".join(text.split())


def test_score_warns_of_a_pool_holding_the_targets_documents_as_select_does(data, tmp_path, capsys):
    """Review 39 finding 7: score ranked a pool holding all the target's documents best, without the warning select
    gives on the same inputs. It runs select's checks (one helper), over the whole pools even when --max-docs samples
    them."""
    target = docs_from(VOCAB_A, 8, 3)  # data["t"]
    others = docs_from(VOCAB_A, 40, 9)
    web, clean = tmp_path / "web.jsonl", tmp_path / "clean.jsonl"
    web.write_text("".join(json.dumps({"text": t}) + "\n" for t in others + target))
    clean.write_text("".join(json.dumps({"text": t}) + "\n" for t in others))
    args = ["score", "--pool", f"web={web}", "--pool", f"clean={clean}", "--target", str(data["t"]), "--json"]
    for extra, said in (([], "8 of 8 target documents also occur in pool 'web' (100.0%)"),
                        (["--max-docs", "5"], "5 of 5 target documents read also occur in pool 'web' (100.0%)")):
        with pytest.warns(UserWarning) as rec:
            assert run(args + extra) == 0
        lines = [str(w.message) for w in rec]
        assert any(said in m and "their scores are inflated" in m for m in lines), lines
        assert any("pools 'web' and 'clean' share 40 document(s) (83.3% of pool 'web', 100.0% of pool 'clean')" in m
                   for m in lines), lines
        capsys.readouterr()
    with warnings.catch_warnings():  # no shared documents: no warning
        warnings.simplefilter("error")
        assert run(["score", "--pool", f"a={data['a']}", "--pool", f"b={data['b']}", "--target", str(data["t"]), "--json"]) == 0
