"""Selection scorers on synthetic cases with known answers: hashed n-grams, DSIR, the target classifier, perplexity,
CoLoR-Filter, buckets."""

import numpy as np
import pytest

from mixopt.config import ProxyConfig
from mixopt.data.tokenize import Tokenizer
from mixopt.errors import ConfigError, DataError, NotFittedError
from mixopt.selection.classifier import TargetClassifier
from mixopt.selection.color_filter import color_filter_scores
from mixopt.selection.dsir import DSIR, gumbel_top_k, top_by_budget
from mixopt.selection.ngrams import HashedCharNgrams, HashedNgrams
from mixopt.selection.output import bucket_of
from mixopt.selection.perplexity import encode_with_ends, perplexity_scores

VOCAB_A = ["river", "mountain", "forest", "valley", "meadow", "stream", "cliff", "canyon", "glacier", "summit"]
VOCAB_B = ["invoice", "payment", "ledger", "account", "balance", "credit", "debit", "audit", "tax", "receipt"]


def docs_from(vocab, n, seed, words=40):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocab, size=words)) for _ in range(n)]


def test_ngram_counts_are_case_free_position_free_and_stay_inside_documents():
    h = HashedNgrams(n_buckets=1000)
    c = h.counts(["Hello world hello", "world, Hello!", "", "x"])
    assert c.per_doc().tolist() == [3 + 2, 4 + 3, 0, 1]  # unigrams + bigrams; punctuation bytes are tokens
    hello = c.buckets[(c.docs == 0)][0]
    assert hello == c.buckets[c.docs == 0][2]  # "Hello" and "hello": same bucket
    assert hello in set(c.buckets[c.docs == 1].tolist())  # the same word in another document, another position
    joined = h.counts(["ab cd"]).per_doc()[0]
    split = h.counts(["ab", "cd"]).per_doc().sum()
    assert joined == 3 and split == 2  # no bigram across a document boundary


def test_ngram_counts_do_not_depend_on_chunking():
    docs = docs_from(VOCAB_A, 30, 0) + docs_from(VOCAB_B, 30, 1)
    big = HashedNgrams(n_buckets=500).counts(docs)
    small = HashedNgrams(n_buckets=500, chunk_bytes=300).counts(docs)
    np.testing.assert_array_equal(np.bincount(big.docs * 500 + big.buckets, minlength=60 * 500),
                                  np.bincount(small.docs * 500 + small.buckets, minlength=60 * 500))


def test_char_ngrams_are_padded_word_pieces_case_free_and_stay_inside_documents():
    h = HashedCharNgrams(n_buckets=1 << 20)
    # " ab " -> " ab", "ab ", " ab "; " hello " -> 5 + 4 + 3 pieces of 3, 4, 5 bytes; "x" -> " x " only
    assert h.counts(["ab cd", "Hello", "", "x"]).per_doc().tolist() == [6, 12, 0, 1]
    assert h.counts(["Cat"]).buckets.tolist() == h.counts(["cat"]).buckets.tolist()
    assert h.counts(["a\tb\ncd"]).buckets.tolist() == h.counts(["a b cd"]).buckets.tolist()
    joined, split = h.counts(["ab cd"]), h.counts(["ab", "cd"])
    assert sorted(joined.buckets.tolist()) == sorted(split.buckets.tolist()) and split.per_doc().tolist() == [3, 3]
    # "cat" and "concat" share "cat", "at " and "cat " (not " ca", " cat", " cat ": a word start differs)
    assert len(set(h.counts(["cat"]).buckets.tolist()) & set(h.counts(["concat"]).buckets.tolist())) == 3
    docs = docs_from(VOCAB_A, 30, 0) + docs_from(VOCAB_B, 30, 1)
    big, small = HashedCharNgrams(500).counts(docs), HashedCharNgrams(500, chunk_bytes=300).counts(docs)
    np.testing.assert_array_equal(np.bincount(big.docs * 500 + big.buckets, minlength=60 * 500),
                                  np.bincount(small.docs * 500 + small.buckets, minlength=60 * 500))
    with pytest.raises(ConfigError, match="lengths"):
        HashedCharNgrams(lengths=(2, 5))


def test_dsir_ranks_documents_from_the_target_distribution_first():
    target = docs_from(VOCAB_A, 20, 0)
    pool = docs_from(VOCAB_A, 25, 1) + docs_from(VOCAB_B, 25, 2)
    scores = DSIR(n_buckets=2000).fit_score(target, pool)
    assert scores[:25].min() > scores[25:].max()
    assert scores[:25].min() > 0 > scores[25:].max()  # log importance weights: above / below the raw distribution


def test_dsir_rejects_unfitted_use_and_mismatched_buckets():
    d = DSIR(n_buckets=100)
    with pytest.raises(Exception, match="not fitted"):
        d.score(HashedNgrams(100).counts(["a b"]))
    with pytest.raises(ConfigError, match="buckets"):
        d.fit(HashedNgrams(200).counts(["a"]), HashedNgrams(200).counts(["b"]))


def test_classifier_ranks_documents_from_the_target_distribution_first():
    target = docs_from(VOCAB_A, 20, 0)
    pool = docs_from(VOCAB_A, 25, 1) + docs_from(VOCAB_B, 25, 2)
    scores = TargetClassifier(n_buckets=2000).fit_score(target, pool)
    assert scores[:25].min() > scores[25:].max()
    again = TargetClassifier(n_buckets=2000).fit_score(target, pool)
    np.testing.assert_array_equal(scores, again)  # deterministic under its seed


def test_classifier_scores_each_pool_document_with_a_model_that_never_saw_it():
    # Each target-like pool document also carries a word of its own. A model fitted on the whole pool has seen that word
    # only in a negative and pushes the document down; the cross-fitted score cannot have learnt it.
    target = docs_from(VOCAB_A, 20, 0)
    own = [f"{t} uniqueword{i}x uniqueword{i}x" for i, t in enumerate(docs_from(VOCAB_A, 10, 1))]
    pool = own + docs_from(VOCAB_B, 30, 2)
    clf = TargetClassifier(n_buckets=4096)
    crossed = clf.fit_score(target, pool)
    counts = clf.featurizer().counts
    in_sample = TargetClassifier(n_buckets=4096).fit(counts(target), counts(pool)).score(counts(pool))
    assert (crossed[:10] > in_sample[:10]).all()
    outside = clf.score(counts(docs_from(VOCAB_A, 3, 7) + docs_from(VOCAB_B, 3, 8)))  # the folds' models, averaged
    assert outside[:3].min() > outside[3:].max()
    assert crossed[:10].min() > crossed[10:].max()


def test_classifier_subwords_tie_unseen_word_forms_to_the_target():
    # The pool's target-like documents write the target's words with a suffix of their own ("garden" -> "gardenz3"):
    # as words they were never seen, and the word-only model (char_buckets=0) cannot tell them from the others; their
    # character n-grams (" ga", "gar", "arde", ...) are the target's.
    stems_a = ["garden", "flower", "petal", "blossom", "meadow", "orchard", "seedling", "harvest"]
    stems_b = ["invoice", "ledger", "account", "payment", "receipt", "balance", "audit", "deposit"]

    def forms(stems, n, seed, tag=""):
        rng = np.random.default_rng(seed)
        return [" ".join(f"{w}{tag}{i}" if tag else w for w in rng.choice(stems, size=30)) for i in range(n)]

    target = forms(stems_a, 20, 0)
    pool = forms(stems_a, 20, 1, tag="z") + forms(stems_b, 40, 2, tag="q")
    with_chars = TargetClassifier(n_buckets=4096, char_buckets=4096).fit_score(target, pool)
    words_only = TargetClassifier(n_buckets=4096, char_buckets=0).fit_score(target, pool)
    assert with_chars[:20].min() > with_chars[20:].max() + 0.5
    assert words_only[:20].min() < words_only[20:].max()
    rows = TargetClassifier(n_buckets=64, char_buckets=128).featurizer().counts(["a b", "cat sat", ""])
    assert rows.shape == (3, 64 + 128)
    np.testing.assert_allclose(np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1))).ravel(), [1, 1, 0])  # unit rows; empty stays 0
    assert rows[1, :64].nnz and rows[1, 64:].nnz  # both blocks


def test_classifier_rejects_bad_settings_and_input():
    clf = TargetClassifier(n_buckets=100)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.score(HashedNgrams(100).counts(["a b"]))
    with pytest.raises(ConfigError, match="buckets"):
        clf.fit(HashedNgrams(200).counts(["a"]), HashedNgrams(200).counts(["b"]))
    other = TargetClassifier(n_buckets=100, char_buckets=0).featurizer().counts
    with pytest.raises(ConfigError, match="character buckets"):
        clf.fit(other(["a"]), other(["b"]))
    with pytest.raises(ConfigError, match="C must be > 0"):
        TargetClassifier(n_buckets=100, C=0).fit_score(["a b"], ["c d", "e f"])
    with pytest.raises(DataError, match="at least 2 pool documents"):
        clf.fit_score(["a b"], ["c d"])
    with pytest.raises(DataError, match="target documents hold no words"):
        clf.fit_score(["", " "], ["c d", "e f"])


def test_gumbel_top_k_follows_the_weights_and_the_budget():
    logw = np.array([10.0, 10.0, -10.0, -10.0, np.nan])
    sizes = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    mask = gumbel_top_k(logw, sizes, budget=10, seed=3)
    assert mask.tolist() == [True, True, False, False, False]
    assert (gumbel_top_k(logw, sizes, 10, seed=3) == mask).all()
    # equal weights: a uniform sample, different for different seeds
    draws = {tuple(gumbel_top_k(np.zeros(20), np.ones(20), 5, seed=s).nonzero()[0]) for s in range(10)}
    assert len(draws) > 5 and all(len(d) == 5 for d in draws)
    assert top_by_budget(np.array([1.0, 3.0, 2.0]), np.array([10.0, 10.0, 10.0]), 1).tolist() == [False, True, False]


def test_buckets_have_equal_tokens_best_first_and_skip_missing_scores():
    scores = np.array([0.1, 0.9, np.nan, 0.5, 0.7, 0.3, 0.2, 0.8])
    sizes = np.array([1, 1, 1, 1, 1, 1, 1, 1.0])
    b = bucket_of(scores, sizes, 2)
    assert b[2] == -1
    assert sorted(np.flatnonzero(b == 0).tolist()) == [1, 4, 7]  # the 3.5 best tokens of 7: 0.9, 0.8, 0.7 (+ boundary)
    assert set(b[[0, 5, 6]].tolist()) == {1}
    big = bucket_of(np.array([3.0, 2.0, 1.0]), np.array([100.0, 1.0, 1.0]), 3)
    assert big.tolist() == [0, 1, 2]  # every bucket gets a document even when one document holds most tokens
    with pytest.raises(ConfigError, match="--buckets"):
        bucket_of(scores, sizes, 8)
    with pytest.raises(ConfigError, match="--buckets"):
        bucket_of(scores, sizes, 0)


TINY = ProxyConfig(n_layer=1, n_embd=32, head_size=32, block_size=32, batch_size=8, tokens=16_000, lr=1e-2,
                   device="cpu", dtype="float32", checkpoints=[1.0], threads=1)


def patterned(n, seed, length=300):
    """Documents of a simple repeating byte pattern: easy to learn."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 3))
        out.append(("abcab" * 100)[k:k + length])
    return out


def random_letters(n, seed, length=300):
    rng = np.random.default_rng(seed)
    letters = np.array(list("qwxzvjkyp"))
    return ["".join(rng.choice(letters, size=length)) for _ in range(n)]


def test_encode_with_ends_marks_each_document_end():
    tok = Tokenizer("bytes")
    ids, ends = encode_with_ends(tok, ["ab", "", "cde"])
    assert ends.tolist() == [2, 3, 7] and (ids[ends] == tok.eos_id).all()


def test_perplexity_scores_target_like_documents_higher():
    tok = Tokenizer("bytes")
    pool = patterned(6, 1) + random_letters(6, 2)
    scores = perplexity_scores(TINY, tok, patterned(20, 0), pool, seed=0)
    assert scores[:6].min() > scores[6:].max()


def test_perplexity_medium_prefers_the_median_loss():
    tok = Tokenizer("bytes")
    pool = patterned(5, 1) + random_letters(5, 2) + ["abcab" * 30 + "qwxzv" * 30 for _ in range(5)]
    scores = perplexity_scores(TINY.model_copy(update={"tokens": 12_000}), tok, [], pool, seed=0, variant="medium")
    assert np.nanmax(scores) <= 0 and np.argmax(scores) >= 10  # the half-and-half documents sit in the middle


def test_color_filter_scores_target_like_documents_higher():
    tok = Tokenizer("bytes")
    pool = patterned(6, 1) + random_letters(12, 2)
    scores = color_filter_scores(TINY, tok, patterned(20, 0), pool, seed=0)
    assert scores[:6].min() > np.median(scores[6:])
    assert scores[:6].min() > scores[6:].max()


def test_buckets_are_never_empty_when_a_long_document_sits_between_two_cuts():
    # two cuts fell between the same two midpoints: bucket q2 came back empty
    assert sorted(set(bucket_of(np.array([5.0, 4, 3, 2, 1]), np.array([1.0, 1, 100, 1, 1]), 4).tolist())) == [0, 1, 2, 3]
    rng = np.random.default_rng(0)
    for _ in range(2000):  # small pools with heavy-tailed sizes: k non-empty buckets, best first
        n = int(rng.integers(1, 10))
        k = int(rng.integers(1, n + 1))
        scores, sizes = rng.normal(size=n), np.exp(rng.normal(scale=3, size=n)).round() + 1
        b = bucket_of(scores, sizes, k)
        assert sorted(set(b.tolist())) == list(range(k)), (scores, sizes, k, b)
        order = np.argsort(-scores, kind="stable")
        assert (np.diff(b[order]) >= 0).all()


def test_a_too_short_proxy_corpus_names_a_setting_select_has():
    from mixopt.selection.lm import train_lm

    with pytest.raises(DataError, match=r"proxy\.block_size.*--config") as err:
        train_lm(TINY, np.zeros(10, dtype=np.int64), 256, 0, where="target")
    assert "--block-size" not in str(err.value)
