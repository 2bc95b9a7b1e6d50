"""Tables for the terminal (rich): the runs of a store, and a verification.

Labels, names and paths are data, never rich markup: a run label such as ``[red]x`` or ``[/]`` (an imported CSV's
index) is shown as written, through :func:`rich.markup.escape`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from ..runs.record import RunRecord


def runs_table(records: Sequence[RunRecord], *, where: str = "", limit: int = 40) -> Table:
    """Label, status, mean validation loss and the largest weights of each run (the first ``limit``)."""
    shown = f" (first {limit}; see `mixopt runs export` for all)" if len(records) > limit else ""
    table = Table(title=f"{len(records)} runs{f' in {escape(where)}' if where else ''}{shown}")
    for col, just in (("run_id", "left"), ("label", "left"), ("status", "left"), ("mean val loss", "right"), ("largest weights", "left")):
        table.add_column(col, justify=just)
    for r in records[:limit]:
        vals = [v for k, v in r.metrics.items() if k.startswith(("val/", "metric/"))]
        mean = f"{sum(vals) / len(vals):.4f}" if vals else "-"
        top = sorted(r.mixture.items(), key=lambda kv: -kv[1])[:3]
        table.add_row(escape(r.run_id[:10]), escape(r.label), escape(r.status), mean, escape(", ".join(f"{d} {w:.2f}" for d, w in top)))
    return table


ONE_SEED = "one seed: no interval; use --seeds 2 or more"  # a verify comparison whose ci95 is null


def across_scales(body: dict) -> bool:
    """Whether VERIFY.json says its prediction is for another scale than the one trained (``predicted.note``, or a
    null ``prediction_error``): then the measured values say nothing for or against it."""
    return bool((body.get("predicted") or {}).get("note")) or ("prediction_error" in body and body["prediction_error"] is None)


def pools_said(body: dict) -> str:
    """What VERIFY.json's plan arm trained of its pooled domains ("" for a plan without quality pools): each on its kept
    pools, or whole (then the verdict is on the mixture, not the filtering)."""
    pools = body.get("pools") or {}
    on = [f"{d} on its kept pools {', '.join(v['pools'])}" for d, v in sorted(pools.items()) if v.get("trained_on") == "kept pools"]
    whole = [d for d, v in sorted(pools.items()) if v.get("trained_on") != "kept pools"]
    if whole:
        on.append(f"{', '.join(whole)} whole, not on {'its' if len(whole) == 1 else 'their'} kept pools (this verifies the "
                  "mixture, not the filtering)")
    return "; ".join(on)


def comparison_verdict(c: dict, body: dict) -> str:
    """One verify comparison in words (the terminal table and the report page say the same): better, worse, within
    noise or one seed; whether the predicted difference held; how many seeds would likely decide it."""
    one_seed = c.get("ci95") is None
    verdict = ("the plan's own schedule (the same runs)" if c.get("same_as_plan") else
               ONE_SEED if one_seed else
               "plan better" if c["plan_better"] else "plan worse" if c["plan_worse"] else "within noise")
    if c.get("claim_held") is False:
        verdict += "; not as predicted" + (" (predicted at another scale)" if across_scales(body) else "")
    if c.get("claim_note") and not c.get("same_as_plan"):  # a pooled plan against an arm on whole domains
        verdict += "; " + c["claim_note"]
    if "seeds_to_resolve" in c and not one_seed:
        n = c["seeds_to_resolve"]
        cap = body.get("max_advised_seeds")
        verdict += (f"; ~{n} seeds would likely decide it" if n
                    else f"; no seeds advice (the difference is not above its own noise, or needs over {cap})" if cap and len(body["seeds"]) > 1 else "")
    return verdict


def verify_table(body: dict) -> Table:
    """VERIFY.json as a table: each arm's mean, the paired difference to the plan, its interval, what the plan
    predicted that difference to be (natural, uniform, best-run) and the verdict."""
    sc = body["scale"]
    table = Table(title=f"{escape(body['target'])} at {sc['model_params']:,} non-embedding params, {sc['tokens']:.3g} tokens, "
                        f"{len(body['seeds'])} paired seeds (lower is better)")
    for col in ("arm", "mean", "plan - arm", "95% interval", "predicted", "verdict"):
        table.add_column(col, justify="left" if col in ("arm", "verdict") else "right")
    plan = body["results"][0]
    pred = body["predicted"]
    std = f" ± {pred['std']:.4f}" if pred.get("std") is not None else ""
    where = "at another scale than trained: not comparable" if across_scales(body) else f"{pred.get('scale', 'proxy')} scale"
    pools = pools_said(body)
    table.add_row("plan", f"{plan['mean']:.4f}", "", "", "", escape(f"predicted {pred['value']:.4f}{std} ({where})"
                                                                   + (f"; trained {pools}" if pools else "")))
    by_name = {r["name"]: r for r in body["results"]}
    for c in body["comparisons"]:
        one_seed = c.get("ci95") is None  # one seed: no interval, nothing decided
        claimed = f"{c['predicted_diff']:+.4f}" if c.get("predicted_diff") is not None else "-"
        verdict = comparison_verdict(c, body)
        table.add_row(escape(c["against"]), f"{by_name[c['against']]['mean']:.4f}", f"{c['diff']:+.4f}",
                      "none (1 seed)" if one_seed else escape("[{:+.4f}, {:+.4f}]".format(*c["ci95"])),
                      claimed, escape(verdict))
    for s in body["skipped"]:
        table.add_row(escape(s["name"]), "-", "-", "-", "-", escape(f"skipped: {s['why']}"))
    return table
