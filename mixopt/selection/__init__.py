"""Data selection: score documents against a target, cut pools into score buckets.

Modules, one job each: ``read`` (pools and targets through HF datasets),
``ngrams`` (hashed n-gram counts), ``dsir``, ``classifier`` (target vs pool
on the same n-grams), ``lm`` (a scoring proxy),
``perplexity``, ``color_filter``, ``cache`` (scores by content), ``output``
(scored JSONL, buckets, ``pools.yaml``) and ``select`` (the verb).
"""
