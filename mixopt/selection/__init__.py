"""Data selection: score documents against a target, cut pools into score buckets.

Modules, one job each: ``read`` (pools and targets through HF datasets),
``ngrams`` (hashed word and character n-gram counts), ``dsir``, ``classifier``
(target vs pool on the word n-grams and the characters'), ``lm`` (a scoring proxy),
``perplexity``, ``color_filter``, ``cache`` (scores by content), ``output``
(scored JSONL, buckets, ``pools.yaml``) and ``select`` (the verb).
"""
