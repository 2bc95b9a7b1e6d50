"""A sweep end to end: proxies per hour, and where its wall time goes.

Runs ``mixopt sweep`` in this process on a fresh store (the demo config by
default) and reads the records back: every run keeps its training, evaluation
and decay-branch seconds and when its group started and finished (a stack of
proxies on a GPU is one group). The rest of a group's wall time is model
building, batch setup, the stack-size probe and store writes; the rest of the
sweep's is tokenizing and planning.

    python benchmarks/sweep_throughput.py [--config demo|PATH] [--runs N] [--store DIR] [--workers N]
        [--proxy KEY=VALUE ...] [--smoke]

``--proxy`` sets a field of the config's ``proxy`` section (YAML values: ``--proxy compile=true``,
``--proxy n_embd=256``), e.g. to time a sweep with ``torch.compile``'s cost per new stack included.

On a GPU this gives the demo config's proxies per GPU-hour with evaluation and
store writes included (``benchmarks/gpu_throughput.py`` gives training alone).
The last line reads ``summary: runs=<n> groups=<n> wall_s=<x> proxies_per_hour=<x>
train_share=<x> eval_share=<x> branch_share=<x> other_share=<x> setup_s=<x> device=cpu|cuda mode=full|smoke``;
the shares are of the groups' wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml
from _common import machine_line, print_summary, provenance

from mixopt.config import ProxyConfig, load_config, packaged_config
from mixopt.proxy.device import pick_device
from mixopt.runs.driver import run_sweep
from mixopt.runs.store import RunStore


def group_times(records) -> list[dict]:
    """One entry per group of runs trained together (same start time): its wall time and its parts, in seconds."""
    groups = defaultdict(list)
    for rec in records:
        groups[rec.info.get("started_at_s")].append(rec)
    out = []
    for started, recs in groups.items():
        info = recs[0].info  # a stack's runs share their timings
        wall = max(r.info["finished_at_s"] for r in recs) - started
        parts = {k: float(info.get(f"{k}_seconds", 0.0)) for k in ("train", "eval", "branch")}
        out.append({"runs": len(recs), "wall": wall, **parts, "other": max(0.0, wall - sum(parts.values()))})
    return out


def with_proxy_fields(cfg, pairs: list[str]):
    """``cfg`` with ``proxy`` fields set from KEY=VALUE strings (values parsed as YAML), validated as the config is."""
    if not pairs:
        return cfg
    fields = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in ProxyConfig.model_fields:
            raise SystemExit(f"--proxy {pair!r}: give KEY=VALUE with KEY a proxy field, e.g. --proxy compile=true.")
        fields[key] = yaml.safe_load(value)
    try:
        proxy = ProxyConfig.model_validate({**cfg.proxy.model_dump(), **fields})
    except ValueError as err:  # pydantic's ValidationError: the first problem, on one line
        raise SystemExit(f"--proxy: {err.errors()[0]['msg'] if hasattr(err, 'errors') else err}") from None
    return cfg.model_copy(update={"proxy": proxy})


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="demo", help="a packaged config name or a YAML path (default: demo)")
    ap.add_argument("--runs", type=int, default=None, help="sampled mixtures (default: the config's)")
    ap.add_argument("--store", default=None, help="store directory; must be new or empty (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes (default: mixopt's choice)")
    ap.add_argument("--proxy", action="append", default=[], metavar="KEY=VALUE",
                    help="set a proxy field (YAML value), e.g. compile=true; repeatable")
    ap.add_argument("--smoke", action="store_true", help="the tiny config with 3 sampled mixtures (CI)")
    args = ap.parse_args(argv)
    name = "tiny" if args.smoke else args.config
    path = Path(name) if Path(name).suffix in (".yaml", ".yml") else packaged_config(name)
    cfg = with_proxy_fields(load_config(path), args.proxy)
    start = provenance()
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(args.store or Path(tmp) / "store")
        if store_dir.exists() and any(store_dir.iterdir()):
            raise SystemExit(f"--store {store_dir} is not empty; give a new directory so every run is trained here.")
        t0 = time.perf_counter()
        summary = run_sweep(cfg, store_dir, n_runs=3 if args.smoke else args.runs, workers=args.workers,
                            show_progress=False)
        wall = time.perf_counter() - t0
        records = RunStore(store_dir).snapshot().records
    groups = group_times(records)
    busy = sum(g["wall"] for g in groups)
    share = {k: sum(g[k] for g in groups) / busy if busy > 0 else 0.0 for k in ("train", "eval", "branch", "other")}
    device = pick_device(cfg.proxy).type
    if args.proxy:
        print("proxy fields set: " + ", ".join(args.proxy))
    print(f"config {path.name}: {summary.trained} runs trained in {len(groups)} groups on {device}, "
          f"{wall:.1f} s end to end ({summary.seconds:.1f} s training runs, the rest tokenizing and planning)")
    print(f"proxies per hour: {3600 * len(records) / wall:,.0f} end to end")
    print("share of the groups' wall time: " + ", ".join(f"{k} {v:.1%}" for k, v in share.items())
          + "  (other: model build, batch setup, stack probe, store writes)")
    print(machine_line(start, provenance()))
    return print_summary({
        "runs": len(records), "groups": len(groups), "wall_s": round(wall, 2),
        "proxies_per_hour": round(3600 * len(records) / wall, 1),
        **{f"{k}_share": round(v, 4) for k, v in share.items()},
        "setup_s": round(wall - summary.seconds, 2), "device": device, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
