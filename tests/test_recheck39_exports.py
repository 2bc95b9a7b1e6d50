"""Recheck of review numbers-39: the batch export's refusals suggest trains every phase near its planned tokens (not
only the total), the files say when the steps train a phase off its tokens, and window bounds keep significant digits
(findings 2 and 4)."""

from __future__ import annotations

import json

import pytest
from mixopt.export import export_plan

def test_window_bounds_keep_significant_digits():
    """9 decimals kept 3 digits of a domain read for 1.234e-07 epochs (246.0 documents in the window for 246.8)."""
    budget, unique = 2e8, {"web": 2.0e12, "code": 3.3e8}
    w = {"web": 0.001234, "code": 0.998766}
    raw = {"budget_tokens": budget, "phases": [{"start_fraction": 0.0, "weights": w}],
           "epochs": {d: float(f"{w[d] * budget / unique[d]:.12g}") for d in w},
           "tokens_per_doc": {"web": 1000.0, "code": 2000.0}}
    meta = json.loads(export_plan(raw, "hf-datasets", {"web": "web.jsonl", "code": "code.jsonl"})["interleave.json"])
    phase = meta["phases"][0]
    web = phase["windows"][phase["domains"].index("web")]
    assert web["read"] == [0.0, pytest.approx(1.234e-07, rel=1e-10)]
    assert web["read"][1] * web["documents_per_epoch"] == pytest.approx(246.8, rel=1e-10)
