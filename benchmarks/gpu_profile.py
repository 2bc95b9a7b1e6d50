"""What dominates a training step, per proxy shape: a torch.profiler breakdown of ``ModelStack.step``.

For each shape of ``gpu_throughput.SHAPES`` (``default``, ``wide``, ``regmix``) and a stack of M proxies
(``--stack M``, or ``auto``: ``choose_stack_size``'s timed probe on CUDA, 1 on CPU) this builds the
training loop's ``ModelStack``, runs a few warm-up steps and measures

- ``wall_ms``: one training step (``ModelStack.step``: forward, backward, clipping, AdamW), timed without the
  profiler, synchronised only at the ends;
- ``batch_ms``: drawing the M batches the loop draws per step (``StackBatches.next_into`` into the staging buffer);
- ``loop_ms``: the loop's step as it runs: draw, copy to the device (pinned, two buffers), train;
- under torch.profiler (CPU and CUDA activities): ``profiled_ms``, a step from its host start to its last kernel's
  end; ``device_ms``, the time per step the GPU is busy (the union of kernel and copy intervals; the GPU-side
  ranges of user annotations such as ``mixopt.step``, as long as the step, are no kernels and count nowhere),
  and its share of ``wall_ms``; kernels and launch calls per step; the top ops
  by self device time (on CPU: self CPU time) with their main kernel; shares per category (matmul, attention,
  elementwise/norm, optimizer = everything after the backward pass: clipping, AdamW; loss, memcpy/memset,
  other) and per phase (forward, backward, update); on CUDA also the host's top ops by self CPU time.

Verdict: device share < 0.5 is "launch-bound" (the GPU waits for the host: fewer, larger kernels pay: CUDA
graphs, torch.compile, fused ops, a bigger stack), else "compute-bound" (attack the dominant category's kernels).

Files under ``--out`` (default ./gpu-profile-out; with --smoke and no --out, a temporary folder, removed at the end):
``profile_<shape>.txt`` (the tables, also printed), ``profile_<shape>.json`` (the numbers) and, with
``--trace``, ``trace_<shape>.json`` (a chrome trace for chrome://tracing or Perfetto; large).

    python benchmarks/gpu_profile.py [--shapes default,wide,regmix] [--stack auto|M] [--steps N] [--out DIR]
                                     [--trace] [--compile] [--cuda-graphs] [--smoke]

The last line reads ``summary: <shape>_stack=M <shape>_wall_ms=.. <shape>_loop_ms=.. <shape>_batch_ms=..
<shape>_device_ms=..|na <shape>_device_share=..|na <shape>_launches=..|na <shape>_bound=launch|compute|na
<shape>_dominant=<category> <shape>_top=<op> <shape>_<category>_share=.. ... cuda=yes|no mode=full|smoke``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from mixopt.config import ProxyConfig
from mixopt.proxy.batches import MixtureBatches, StackBatches
from mixopt.proxy.device import pick_dtype
from mixopt.proxy.model import GPTConfig
from mixopt.proxy.stack_size import choose_stack_size
from mixopt.proxy.step import GRAPH_EAGER_STEPS, ModelStack
from _common import machine_line, print_summary, provenance
from gpu_throughput import SHAPES, mixtures
from proxy_throughput import repo_text_domains

CATEGORIES = ("matmul", "attention", "elementwise", "optimizer", "loss", "memcpy", "other")
PHASES = ("forward", "backward", "update", "glue")  # glue: ModelStack.step's own Python, outside any op
STEP_LABEL = "mixopt.step"  # record_function around each profiled ModelStack.step
MATMUL = {"mm", "bmm", "addmm", "baddbmm", "addbmm", "matmul", "linear", "einsum", "_scaled_mm", "mv", "dot"}
ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "cudnn_attention", "sdpa")
LOSS = ("cross_entropy", "log_softmax", "nll_loss", "logsumexp")
ELEMENTWISE = {"add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "pow", "sqrt", "rsqrt",
               "exp", "tanh", "clamp", "clamp_", "where", "masked_fill", "masked_fill_", "gelu", "gelu_backward",
               "layer_norm", "native_layer_norm", "native_layer_norm_backward", "dropout", "native_dropout",
               "copy_", "_to_copy", "to", "clone", "contiguous", "fill_", "zero_", "zeros", "zeros_like",
               "ones_like", "empty_like", "sum", "mean", "cat", "stack", "softmax", "_softmax",
               "_softmax_backward_data", "threshold_backward", "lerp_", "addcmul_", "addcdiv_"}
KERNEL_HINTS = (("attention", ("flash", "fmha", "attention")),  # before matmul: fmha_cutlass*
                ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas")),
                ("optimizer", ("adam", "multi_tensor")), ("loss", LOSS),
                ("elementwise", ("elementwise", "vectorized", "reduce", "layer_norm", "gelu", "copy", "fill")))
LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch", "cudaLaunchCooperativeKernel")


def category(op: str, kernel: str = "", phase: str = "") -> str:
    """The category of time spent in ``op`` (an aten op or annotation) running ``kernel`` during ``phase``."""
    k, o = kernel.lower(), op.lower()
    if k.startswith(("memcpy", "memset")):
        return "memcpy"
    if any(s in o for s in ATTENTION):
        return "attention"
    if phase == "update" or o.startswith("optimizer.") or "adam" in o or "_foreach_" in o:
        return "optimizer"
    if any(s in o for s in LOSS):
        return "loss"
    base = o.rsplit("::", 1)[-1].strip()
    if base in MATMUL:
        return "matmul"
    if base in ELEMENTWISE:
        return "elementwise"
    # no op, an annotation (a CUDA graph's replay) or an op of no category: go by the kernel's name
    return next((c for c, hints in KERNEL_HINTS if any(h in k for h in hints)), "other")


def _chain(e):
    while e is not None:
        yield e
        e = e.cpu_parent


def _is_backward(e) -> bool:
    return any(a.name.startswith("autograd::engine") or a.name.endswith(("Backward0", "Backward1")) for a in _chain(e))


def phases_of(events) -> dict[int, str]:
    """The phase (forward, backward, update) of each CPU event inside a profiled step, by ``id(event)``.

    Backward: under the autograd engine. Update: under ``Optimizer.*`` or after the step's last backward op
    (clipping, AdamW, zero_grad). Glue: the step's own annotation (its self time is Python between ops).
    Forward: the rest (up to the loss and its reduction).
    """
    steps = sorted((e.time_range.start, e.time_range.end) for e in events if e.name == STEP_LABEL)
    cpu = [e for e in events if e.device_type == DeviceType.CPU and not e.is_async]
    backward = {id(e) for e in cpu if _is_backward(e)}
    ends = [max((e.time_range.end for e in cpu if id(e) in backward and s <= e.time_range.start <= t), default=t)
            for s, t in steps]
    out = {}
    for e in cpu:
        start = e.time_range.start
        if id(e) in backward:
            out[id(e)] = "backward"
        elif e.name == STEP_LABEL:
            out[id(e)] = "glue"
        elif any(a.name.startswith("Optimizer.") for a in _chain(e)):
            out[id(e)] = "update"
        else:
            i = next((j for j, (s, t) in enumerate(steps) if s <= start <= t), None)
            out[id(e)] = "update" if i is not None and start >= ends[i] else "forward"
    return out


def _busy_us(intervals) -> float:
    """Length of the union of (start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for s, t in sorted(intervals):
        if t > reach:
            total += t - max(s, reach)
            reach = t
    return total


def _rows(records, steps: int, top: int) -> list[dict]:
    """Records (op, kernel, phase, category, us) summed by (op, category), biggest first, per step."""
    total = sum(r[4] for r in records) or 1.0
    rows: dict = {}
    for op, kernel, _, cat, us in records:
        row = rows.setdefault((op, cat), {"op": op, "category": cat, "us": 0.0, "n": 0, "kernels": {}})
        row["us"] += us
        row["n"] += 1
        if kernel:
            row["kernels"][kernel] = row["kernels"].get(kernel, 0.0) + us
    out = sorted(rows.values(), key=lambda r: -r["us"])[:top]
    return [{"op": r["op"], "category": r["category"], "ms_per_step": r["us"] / 1e3 / steps,
             "share": r["us"] / total, "n_per_step": r["n"] / steps,
             "main_kernel": max(r["kernels"], key=r["kernels"].get) if r["kernels"] else ""} for r in out]


def _shares(records, index: int, names) -> dict[str, float]:
    """Each name's share of the records' time, among the records that have one of ``names``."""
    total = sum(r[4] for r in records if r[index] in names) or 1.0
    return {n: sum(r[4] for r in records if r[index] == n) / total for n in names}


def _op_name(e) -> str:
    return f"(python in {STEP_LABEL})" if e.name == STEP_LABEL else e.name


def is_device_annotation(e, host_names=frozenset()) -> bool:
    """Whether device event ``e`` is the GPU-side range of a user annotation, not a kernel or a copy.

    ``record_function`` (``mixopt.step``) and ``Optimizer.step#...`` also record their span on the GPU (kineto's
    ``gpu_user_annotation``: from their first kernel's start to their last kernel's end). torch marks them with
    ``FunctionEvent.is_user_annotation`` (and ``activity_type`` "gpu_user_annotation"); a torch without those
    flags is matched by name: such a range is named after a host event (``host_names``), a kernel never is.
    """
    flag = getattr(e, "is_user_annotation", None)
    if flag or "user_annotation" in str(getattr(e, "activity_type", "") or ""):
        return True
    return flag is None and e.name in host_names


def _profiled_us(events, device) -> list[float]:
    """Each profiled step's span: from its host annotation's start to its host end or its last device event's end
    (of those starting before the next step), whichever is later."""
    steps = sorted((e.time_range.start, e.time_range.end) for e in events
                   if e.name == STEP_LABEL and e.device_type == DeviceType.CPU)
    ends = sorted((e.time_range.start, e.time_range.end) for e in device)
    out = []
    for i, (s, t) in enumerate(steps):
        nxt = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        out.append(max([t] + [b for a, b in ends if s <= a < nxt]) - s)
    return out


def analyse(prof, steps: int, cuda: bool, top: int = 12) -> dict:
    """Per-step figures and tables of a finished profile of ``steps`` training steps.

    The device-side ranges of user annotations (``is_device_annotation``) are no kernels: they count nowhere
    (kernels, device busy time, the ``top`` table, the categories and their shares).
    """
    events = list(prof.events())
    phase = phases_of(events)
    cpu = [e for e in events if id(e) in phase and not e.name.startswith("ProfilerStep")]
    host = [(_op_name(e), "", phase[id(e)], category(e.name, "", phase[id(e)]), e.self_cpu_time_total)
            for e in cpu if e.self_cpu_time_total > 0]
    host_names = {e.name for e in events if e.device_type == DeviceType.CPU}
    gpu = [e for e in events if e.device_type == DeviceType.CUDA] if cuda else []
    annotations = {e.name for e in gpu if is_device_annotation(e, host_names)}
    device = [e for e in gpu if not is_device_annotation(e, host_names)]
    spans = _profiled_us(events, device)
    out = {"host_top": _rows(host, steps, top), "profiled_ms": sum(spans) / 1e3 / max(len(spans), 1)}
    if not cuda:
        records = host
        out.update(device_ms=None, kernels=None, launch_calls=None, memcpys=None)
    else:
        records, claimed = [], {}
        for e in cpu:
            for k in e.kernels:
                if k.name in annotations:  # an annotation's range torch linked to its op: no kernel
                    continue
                if e.name == STEP_LABEL:  # launched by no op, e.g. a CUDA graph's replay: its phase is unknown
                    records.append((f"(kernel) {k.name}", k.name, "", category("", k.name), k.duration))
                else:
                    records.append((e.name, k.name, phase[id(e)], category(e.name, k.name, phase[id(e)]),
                                    k.duration))
                claimed[k.name] = claimed.get(k.name, 0.0) + k.duration
        spent: dict[str, float] = {}
        for e in device:
            spent[e.name] = spent.get(e.name, 0.0) + e.time_range.elapsed_us()
        for name, us in spent.items():  # kernels no CPU event claims
            if us - claimed.get(name, 0.0) > 0.5:
                records.append((f"(kernel) {name}", name, "", category("", name), us - claimed.get(name, 0.0)))
        copies = sum(e.name.lower().startswith(("memcpy", "memset")) for e in device)
        out.update(device_ms=_busy_us((e.time_range.start, e.time_range.end) for e in device) / 1e3 / steps,
                   kernels=(len(device) - copies) / steps, memcpys=copies / steps,
                   launch_calls=sum(e.name.startswith(LAUNCH_CALLS) for e in events) / steps)
    out["top"] = _rows(records, steps, top)
    out["categories"] = _shares(records, 3, CATEGORIES)
    out["phases"] = _shares(records, 2, PHASES)
    return out


class Feeder:
    """The loop's batches: M runs drawn at once into pinned staging buffers (two on CUDA), then to the device."""

    def __init__(self, data, m: int, batch: int, block: int, device: torch.device):
        train = {d: data.domains[d].train for d in data.names}
        runs = [MixtureBatches(train, mix, batch_size=batch, block_size=block, seed=i)  # mix: {domain: share}
                for i, mix in enumerate(mixtures(m))]
        self.drawer, self.live, self.device = StackBatches(runs), list(range(m)), device
        cuda = device.type == "cuda"
        self.stage = [torch.zeros((2, m, batch, block), dtype=torch.long, pin_memory=cuda)
                      for _ in range(2 if cuda else 1)]  # (2, M, B, T)
        self.copied: list = [None] * len(self.stage)
        self.n = 0

    def draw(self) -> torch.Tensor:
        slot = self.n % len(self.stage)
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()
        self.drawer.next_into(self.stage[slot], self.live)
        self.n += 1
        return self.stage[slot]

    def next(self) -> torch.Tensor:
        """The next (2, M, B, T) batch on the device."""
        slot = self.n % len(self.stage)
        xy = self.draw().to(self.device, non_blocking=True)
        if self.device.type == "cuda":  # the buffer is refilled only once this copy is done
            self.copied[slot] = torch.cuda.Event()
            self.copied[slot].record()
        return xy


def _ms_per_call(fn, n: int, device: torch.device, rounds: int = 2) -> float:
    """Milliseconds per call of ``fn``: the faster of ``rounds`` rounds of ``n`` calls, synchronised at the ends."""
    best = float("inf")
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - t0) * 1e3 / n)
    return best


def profile_shape(label: str, args, data, device: torch.device) -> dict:
    """Build the shape's stack, time it and profile it; returns the figures (see the module docstring)."""
    shape = dict(SHAPES[label])
    vocab = shape.pop("vocab")
    data = dataclasses.replace(data, vocab_size=vocab) if vocab != data.vocab_size else data
    cuda = device.type == "cuda"
    if args.smoke:
        shape.update(batch_size=min(shape.get("batch_size", 16), 4), block_size=min(shape.get("block_size", 128), 64))
    cfg = ProxyConfig(**shape, tokens=1 << 20, device=device.type, dtype="auto" if cuda else "float32",
                      checkpoints=[1.0], compile=args.compile, cuda_graphs=args.cuda_graphs)
    m = choose_stack_size(cfg, device, vocab_size=vocab) if args.stack == "auto" else int(args.stack)
    dtype = pick_dtype(cfg, device, vocab_size=vocab)
    B, T = cfg.batch_size, cfg.block_size
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with torch.random.fork_rng(devices=[]):
        stack = ModelStack.from_seeds(GPTConfig.from_proxy(cfg, vocab), list(range(m)), cfg, device, dtype)
    feeder = Feeder(data, m, B, T, device)
    alive = torch.ones(m, dtype=torch.bool, device=device)
    xy = feeder.next()
    warmup = max(args.warmup, GRAPH_EAGER_STEPS + 1) if stack.graphs else args.warmup  # timed steps: replays
    for _ in range(warmup):
        xy = feeder.next()
        stack.step(xy[0], xy[1], cfg.lr, alive)
    timed = max(args.steps, 3)
    wall = _ms_per_call(lambda: stack.step(xy[0], xy[1], cfg.lr, alive), timed, device)
    batch_ms = _ms_per_call(lambda: feeder.drawer.next_into(feeder.stage[0], feeder.live), timed, device)
    loop = _ms_per_call(lambda: stack.step(*feeder.next(), cfg.lr, alive), timed, device)

    done: list[dict] = []

    def ready(prof) -> None:  # the active steps are over: read them before the profiler clears them
        t0 = time.perf_counter()
        done.append(analyse(prof, args.steps, cuda, args.top))
        done[-1]["analyse_s"] = time.perf_counter() - t0
        if args.trace:
            prof.export_chrome_trace(str(Path(args.out) / f"trace_{label}.json"))

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    plan = schedule(wait=0, warmup=1, active=args.steps, repeat=1)  # one step to settle the profiler, then N
    with profile(activities=activities, schedule=plan, on_trace_ready=ready) as prof:
        for _ in range(1 + args.steps):
            with record_function(STEP_LABEL):
                stack.step(xy[0], xy[1], cfg.lr, alive)
            if cuda:
                torch.cuda.synchronize(device)
            prof.step()
    res = done[0]
    n_params = sum(p.numel() for p in stack.params) // m
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if cuda else None
    dev_share = res["device_ms"] / wall if res["device_ms"] is not None else None
    res.update(shape=label, stack=m, params_per_model=n_params, vocab=vocab, batch_size=B, block_size=T,
               dtype=str(dtype).removeprefix("torch."), device=torch.cuda.get_device_name(device) if cuda else "cpu",
               compile=cfg.compile, cuda_graphs=stack.graphed, profiled_steps=args.steps, wall_ms=wall,
               loop_ms=loop, batch_ms=batch_ms, tokens_per_s=m * B * T / wall * 1e3, device_share=dev_share,
               bound=bound_of(dev_share), peak_gib=peak,
               dominant=max(res["categories"], key=res["categories"].get))
    return res


def bound_of(device_share: float | None) -> str | None:
    """"launch" when the GPU is busy less than half the step's wall time, else "compute"; None without a GPU."""
    if device_share is None:
        return None
    return "launch" if device_share < 0.5 else "compute"


def _table(rows: list[dict], unit: str, per: str) -> list[str]:
    lines = [f"  {'op':<60} {'category':<11} {unit:>9} {'share':>6} {per:>8}  main kernel"]
    for r in rows:
        lines.append(f"  {r['op'][:60]:<60} {r['category']:<11} {r['ms_per_step']:>9.3f} {r['share']:>6.1%} "
                     f"{r['n_per_step']:>8.1f}  {r['main_kernel'][:60]}")
    return lines


def render(r: dict) -> str:
    """The text report of one shape's profile."""
    cuda = r["device_ms"] is not None
    na = "na (no GPU)"
    verdict = (f"{r['bound']}-bound (device busy {r['device_share']:.0%} of the step's wall time)" if cuda else
               "CPU run: no device; shares are of self CPU time")
    lines = [
        (f"{r['shape']}: stack of {r['stack']} x {r['params_per_model']:,} params, batch {r['batch_size']} x "
         f"{r['block_size']}, vocab {r['vocab']:,}, {r['dtype']} on {r['device']}; compile {r['compile']}, "
         f"cuda_graphs {r['cuda_graphs']}; {r['profiled_steps']} profiled steps"),
        (f"  wall {r['wall_ms']:.3f} ms/step ({r['tokens_per_s']:,.0f} tok/s); loop (draw + copy + step) "
         f"{r['loop_ms']:.3f} ms/step; batch drawing {r['batch_ms']:.3f} ms/step; under the profiler "
         f"{r['profiled_ms']:.3f} ms/step"),
        "  device " + (f"{r['device_ms']:.3f} ms/step, share {r['device_share']:.3f}; {r['kernels']:.0f} kernels, "
                       f"{r['launch_calls']:.0f} launch calls, {r['memcpys']:.0f} copies/sets per step; "
                       f"peak {r['peak_gib']:.2f} GiB allocated" if cuda else na),
        f"  verdict: {verdict}; dominated by {r['dominant']} ({r['categories'][r['dominant']]:.0%})",
        "  categories: " + ", ".join(f"{c} {r['categories'][c]:.1%}" for c in CATEGORIES),
        "  phases: " + ", ".join(f"{p} {r['phases'][p]:.1%}" for p in PHASES),
        f"  top ops by self {'device' if cuda else 'CPU'} time:",
        *_table(r["top"], "ms/step", "kern/st" if cuda else "calls/st"),
    ]
    if cuda:
        lines += ["  host: top ops by self CPU time:", *_table(r["host_top"], "ms/step", "calls/st")]
    return "\n".join(lines)


def summary_fields(r: dict) -> dict:
    s, top = r["shape"], r["top"][0]["op"] if r["top"] else "none"
    fields = {f"{s}_stack": r["stack"], f"{s}_wall_ms": r["wall_ms"], f"{s}_loop_ms": r["loop_ms"],
              f"{s}_batch_ms": r["batch_ms"], f"{s}_device_ms": r["device_ms"], f"{s}_device_share": r["device_share"],
              f"{s}_launches": r["kernels"], f"{s}_bound": r["bound"], f"{s}_dominant": r["dominant"],
              f"{s}_top": "".join(c if c.isalnum() or c in ":._-" else "_" for c in top)}
    fields.update({f"{s}_{c}_share": r["categories"][c] for c in CATEGORIES})
    return fields


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=None, help="comma-separated of default,wide,regmix (default: all on CUDA, "
                                                   "default on CPU)")
    ap.add_argument("--stack", default="auto", help="models per stack: auto (choose_stack_size) or a number")
    ap.add_argument("--steps", type=int, default=None, help="profiled steps (default 10 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--top", type=int, default=12, help="rows of the op tables")
    ap.add_argument("--out", default=None,
                    help="folder for the files (default ./gpu-profile-out; with --smoke a temporary one, removed)")
    ap.add_argument("--trace", action="store_true", help="also write trace_<shape>.json (chrome trace; large)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default 1 without CUDA)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the models (ProxyConfig.compile)")
    ap.add_argument("--cuda-graphs", action="store_true", help="ProxyConfig.cuda_graphs (CUDA)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if args.stack != "auto" and not (args.stack.isdigit() and int(args.stack) >= 1):
        ap.error(f"--stack must be auto or a positive number; got {args.stack!r}")
    args.steps = args.steps or (2 if args.smoke else 10 if cuda else 3)
    if args.smoke:
        args.warmup = min(args.warmup, 1)
    shapes = (args.shapes or ("default,wide,regmix" if cuda and not args.smoke else "default")).split(",")
    unknown = sorted(set(shapes) - set(SHAPES))
    if unknown:
        ap.error(f"--shapes names {unknown}; known shapes: {','.join(SHAPES)}")
    scratch = args.smoke and args.out is None  # a smoke run without --out leaves nothing behind
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="gpu-profile-") if args.smoke else "gpu-profile-out"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = provenance()
    before = torch.get_num_threads()
    if args.threads or not cuda:
        torch.set_num_threads(args.threads or 1)
    fields: dict = {}
    try:
        data = repo_text_domains()
        for label in shapes:
            try:
                r = profile_shape(label, args, data, device)
            except torch.cuda.OutOfMemoryError as err:  # one shape's stack too big: still profile the others
                print(f"{label}: out of memory ({str(err).splitlines()[0]}); try a smaller --stack", flush=True)
                fields[f"{label}_error"] = "oom"
                torch.cuda.empty_cache()
                continue
            text = render(r)
            print(text, flush=True)
            (out / f"profile_{label}.txt").write_text(text + "\n")
            (out / f"profile_{label}.json").write_text(json.dumps(r, indent=1) + "\n")
            fields.update(summary_fields(r))
    finally:
        torch.set_num_threads(before)
        if scratch:
            shutil.rmtree(out, ignore_errors=True)
    if not scratch:
        print(f"files in {out.resolve()}: " + " ".join(sorted(p.name for p in out.iterdir())))
    print(machine_line(start, provenance()))
    return print_summary({**fields, "cuda": cuda, "mode": "smoke" if args.smoke else "full"})


if __name__ == "__main__":
    main()
