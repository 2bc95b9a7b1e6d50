"""The answer, first on the page: what to train (mixture per phase, repetition), what it should reach, and whether
training it at its budget bore that out (VERIFY.json).

Everything here is plain text and small tables of plain text; :mod:`.html` escapes and lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..plan import Plan
from . import fmt
from .tables import across_scales, comparison_verdict, pools_said


@dataclass
class TextTable:
    """A table of strings for the page: ``right`` holds the indices of numeric (right-aligned) columns."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    right: set[int] = field(default_factory=set)


def _phase_span(starts: list[float], k: int) -> str:
    end = starts[k + 1] if k + 1 < len(starts) else 1.0
    return f"{starts[k]:.0%}–{end:.0%}"


def mixture_table(plan: Plan) -> TextTable:
    """One row per domain: its share in each phase, overall, and how many times its unique tokens are seen."""
    starts = [p.start_fraction for p in plan.phases]
    overall = plan.overall_weights()
    header = ["domain"]
    if len(plan.phases) > 1:
        header += [f"phase {k + 1} ({_phase_span(starts, k)})" for k in range(len(plan.phases))]
    header += ["overall" if len(plan.phases) > 1 else "share", "tokens"]
    if plan.epochs:
        header.append("epochs")
    pooled = {d: kept for d, kept in plan.pools.items() if kept}
    if pooled:
        header.append("quality pools")
    rows = []
    for d in plan.domains:
        row = [d]
        if len(plan.phases) > 1:
            row += [fmt.share(p.weights.get(d, 0.0)) for p in plan.phases]
        row += [fmt.share(overall.get(d, 0.0)), fmt.tokens(overall.get(d, 0.0) * plan.budget_tokens)]
        if plan.epochs:
            row.append(fmt.epochs(plan.epochs[d]) if d in plan.epochs else "–")
        if pooled:
            row.append(", ".join(pooled.get(d, [])) or "–")
        rows.append(row)
    note = "Shares are of training tokens" + (", per phase (its span of the budget) and over the whole run" if len(plan.phases) > 1 else "")
    note += "; tokens = overall share × budget."
    if plan.epochs:
        note += (" Epochs: how many times the plan passes over each domain's unique training tokens (above 1, tokens "
                 "repeat)" + (", for a domain with quality pools its kept pools' tokens, all the plan trains of it"
                              if pooled else "") + ".")
    return TextTable("Mixture", header, rows, note, right=set(range(1, len(header) - bool(pooled))))


def proxy_tokens(plan: Plan, store_tokens: float | None) -> float | None:
    """Tokens per proxy run: what the projector recorded, else the store's."""
    proj = (plan.predicted.by or {}).get("projector") if plan.predicted else None
    t = proj.get("proxy_tokens") if isinstance(proj, Mapping) else None
    return float(t) if t else store_tokens


def prediction_scale(plan: Plan, store_tokens: float | None = None) -> tuple[str, bool]:
    """Where the plan's predicted value applies, in words, and whether that is the plan's own budget."""
    sur = (plan.predicted.by or {}).get("surrogate")
    scale = sur.get("scale") if isinstance(sur, Mapping) else None
    budget = fmt.tokens(plan.budget_tokens)
    if scale == "target":
        target = plan.provenance.get("target_scale")
        params = target.get("model_params") if isinstance(target, Mapping) else None
        at = f"at {fmt.tokens(float(params))} non-embedding parameters and " if params else "at "
        return f"{at}the plan's budget of {budget} tokens", True
    if scale == "proxy":
        t = proxy_tokens(plan, store_tokens)
        at = f"at the proxies' scale ({fmt.tokens(t)} tokens per run)" if t else "at the proxies' scale"
        return f"{at}, not at the plan's budget of {budget} tokens", False
    return "at an unrecorded scale (the plan does not say)", False


def predicted_lines(plan: Plan, store_tokens: float | None = None) -> list[str]:
    """The predicted value with its uncertainty and scale, the projector's value at the budget, and the baselines."""
    p = plan.predicted
    if p is None:
        return ["Predicted: the plan carries no prediction."]
    where, at_budget = prediction_scale(plan, store_tokens)
    line = f"Predicted {p.metric} = {fmt.pm(p.value, p.std)} (±1σ), {where}."
    end = p.end_phase if isinstance(p.end_phase, Mapping) and p.end_phase.get("gain") is not None else None
    sur = (p.by or {}).get("surrogate")
    if end is not None:  # the value is the phased plan's: the flat surrogate's minus the end phase's gain
        flat = (f"the surrogate's {fmt.pm(float(sur['value']), sur.get('std'))} for the plan without its end phase "
                if isinstance(sur, Mapping) and sur.get("value") is not None else "the surrogate's value without it ")
        line += (f" That is {flat}minus the end phase's predicted gain {fmt.pm(float(end['gain']), end.get('gain_std'))} "
                 "(two-phase model).")
    proj = (p.by or {}).get("projector")
    if not at_budget and isinstance(proj, Mapping) and proj.get("value") is not None and proj.get("tokens"):
        std = proj.get("std")
        it = "the plan without its end phase" if end is not None else "it"  # the projector values a flat mixture only
        line += (f" At {fmt.tokens(proj['tokens'])} tokens the projector (an extrapolation) puts {it} at "
                 f"{fmt.pm(float(proj['value']), None if std is None else float(std))}.")
    lines = [line]
    base = {k: v for k, v in (p.baselines or {}).items() if k in ("natural", "uniform") and isinstance(v, Mapping)
            and v.get("value") is not None}
    if base:
        parts = ", ".join(f"{k} {fmt.loss(v['value'])} (plan − {k}: {fmt.diff(p.value - float(v['value']))})" for k, v in base.items())
        sur = (p.by or {}).get("surrogate")
        search = sur.get("search", "") if isinstance(sur, Mapping) else ""
        if isinstance(search, str) and search.startswith("baseline:"):
            # a kept baseline's shares with an end phase, or with a domain on its kept pools, trains otherwise than the
            # baseline (verify's baseline arm trains whole domains flat): it is the baseline's mixture, not the baseline
            shares = plan.overall_weights()
            pooled = [f"{d} on its kept pools ({', '.join(kept)})" for d, kept in sorted(plan.pools.items())
                      if kept and shares.get(d, 0.0) > 0]
            verdict = (f"the plan is the {search.split(':', 1)[1]} baseline" + ("'s mixture" if pooled else "")
                       + (" with an end phase" if end is not None else "" if pooled else " itself")
                       + (f", with {' and '.join(pooled)}" if pooled else "")
                       + ": the search's best mixture did not beat the baselines beyond seed noise and model uncertainty "
                       "(see Why this plan)")
        elif p.beats_baselines is True:
            verdict = "the plan is predicted to beat each baseline beyond the noise band"
        elif p.beats_baselines is False:
            verdict = "the plan is not shown to beat every baseline beyond the noise band (see Why this plan)"
        else:
            verdict = "the plan does not say whether the gains exceed seed noise"
        lines.append(f"Baselines, predicted at the same scale: {parts}; lower is better. Verdict: {verdict}.")
    return lines


def verification_summary(body: Mapping | None, verify_cmd_hint: bool = True) -> tuple[list[str], TextTable | None]:
    """A sentence on what training the plan showed, and VERIFY.json as a table (arm, mean, plan − arm, interval, verdict)."""
    if body is None:
        return (["Not verified by training: `mixopt verify PLAN.yaml --store DIR --out VERIFY.json` trains the plan and its "
                 "alternatives at the plan's budget; pass the file to `mixopt report --verify VERIFY.json`."]
                if verify_cmd_hint else [], None)
    sc = body["scale"]
    n_seeds = len(body["seeds"])
    plan_res = body["results"][0]
    pred = body.get("predicted") or {}
    head = (f"Verified by training at {fmt.tokens(sc['tokens'])} tokens, {fmt.tokens(sc['model_params'])} non-embedding "
            f"parameters, {n_seeds} paired seed{'' if n_seeds == 1 else 's'}: the plan reached "
            f"{body['target']} = {fmt.loss(plan_res['mean'])}")
    if pools := pools_said(body):
        head += f" (trained {pools})"
    elsewhere = across_scales(body)  # a prediction for another scale: no inside/outside verdict
    if pred.get("value") is not None:
        std = pred.get("std")
        head += f" (predicted {fmt.pm(pred['value'], std)}"
        if elsewhere:
            head += " for another scale than this one, so not compared"
        elif std:
            inside = abs(plan_res["mean"] - pred["value"]) <= 2 * std
            head += f"; {'inside' if inside else 'outside'} ±2σ"
            if pred.get("pools_note"):
                head += ", a prediction for the whole domains, not the kept pools trained"
        head += ")"
    groups: dict[str, list[str]] = {"better than": [], "worse than": [], "within noise of": [], "one seed against": []}
    for c in body["comparisons"]:
        if c.get("same_as_plan"):
            continue
        key = ("one seed against" if c.get("ci95") is None else "better than" if c["plan_better"] else
               "worse than" if c["plan_worse"] else "within noise of")
        groups[key].append(c["against"])
    said = [f"{k} {', '.join(v)}" for k, v in groups.items() if v]
    same = [c["against"] for c in body["comparisons"] if c.get("same_as_plan")]
    intervals = any(c.get("ci95") is not None for c in body["comparisons"])
    head += "; " + ("; ".join(said) if said else "no alternative arms") + (" (95% paired intervals)" if intervals else
                                                                          " (one seed: no interval, nothing decided)")
    head += (f"; {', '.join(same)} {'is' if len(same) == 1 else 'are'} the plan's own schedule (the same runs)." if same else ".")
    by_name = {r["name"]: r for r in body["results"]}
    rows = [["plan", fmt.loss(plan_res["mean"]), "", "", "" if pred.get("value") is None else fmt.pm(pred["value"], pred.get("std")),
             "the plan; predicted at another scale" if elsewhere else "the plan"]]
    for c in body["comparisons"]:
        arm = by_name.get(c["against"], {})
        rows.append([c["against"], fmt.loss(arm.get("mean")), fmt.diff(c["diff"]),
                     "none (1 seed)" if c.get("ci95") is None else "[{}, {}]".format(*map(fmt.diff, c["ci95"])),
                     fmt.diff(c["predicted_diff"]) if c.get("predicted_diff") is not None else "–",
                     comparison_verdict(c, body)])
    for s in body.get("skipped") or []:
        rows.append([str(s.get("name", "?")), "–", "–", "–", "–", f"skipped: {s.get('why', '')}"])
    table = TextTable("Verification", ["arm", "mean", "plan − arm", "95% interval", "predicted", "verdict"], rows,
                      f"{body['target']}, mean over {n_seeds} paired seed{'' if n_seeds == 1 else 's'}; lower is better, "
                      "so a negative plan − arm means the plan trained better. 'predicted' is the plan's value for the plan "
                      "row and the predicted plan − arm difference for the others.", right={1, 2, 3, 4})
    return [head, *(f"Note: {n}." for n in body.get("notes") or [])], table


def answer(plan: Plan | None, verification: Mapping | None, store_tokens: float | None = None) -> list[str | TextTable]:
    """The first section of the page, in reading order: sentences (str) and tables (empty without a plan and a
    verification): the budget and phases, the mixture, the prediction and the baselines, then the verification."""
    blocks: list[str | TextTable] = []
    if plan is not None:
        n = len(plan.phases)
        starts = [p.start_fraction for p in plan.phases]
        phases = ("one phase (the same mixture throughout)" if n == 1 else
                  f"{n} phases, switching at " + ", ".join(f"{s:.0%}" for s in starts[1:]) + " of the tokens")
        blocks.append(f"Train on {fmt.tokens(plan.budget_tokens)} tokens in {phases}.")
        blocks.append(mixture_table(plan))
        blocks += predicted_lines(plan, store_tokens)
    v_lines, v_table = verification_summary(verification, verify_cmd_hint=plan is not None)
    blocks += v_lines
    if v_table is not None:
        blocks.append(v_table)
    return blocks
