"""benchmarks/gpu_profile.py: the per-shape profile of a training step, its files, its summary and its arithmetic.

The smoke runs profile real ``ModelStack`` steps on CPU; the CUDA branch of the analysis (kernels, launches,
device busy time, kernels no op claims) is checked on a hand-made event list shaped like torch.profiler's.
"""

import json
import os
import shutil
import subprocess
import tarfile
from types import SimpleNamespace

import pytest
import torch
from torch.autograd import DeviceType

from tests.bench_loader import BENCH_DIR as BENCH, load_benchmark



@pytest.fixture
def gp(monkeypatch):
    return load_benchmark("gpu_profile", monkeypatch)


@pytest.mark.parametrize("stack", ["1", "2"])
def test_smoke_run_writes_the_files_and_a_parseable_summary(gp, monkeypatch, capsys, tmp_path, stack):
    """One model (GPT) and a stack of two (StackedGPT, per-model clipping) on CPU: tables, JSON, summary keys."""
    fields = gp.main(["--smoke", "--stack", stack, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[-1].startswith("summary: ") and sum(ln.startswith("summary:") for ln in lines) == 1
    parsed = load_benchmark("_common", monkeypatch).parse_summary(out)
    cuda = torch.cuda.is_available()
    assert parsed["default_stack"] == int(stack) and parsed["cuda"] == ("yes" if cuda else "no")
    for key in ("wall_ms", "loop_ms", "batch_ms"):
        assert parsed[f"default_{key}"] > 0, key
    if cuda:  # the GPU session runs this file too: kernels, launches and the verdict from real CUDA events
        assert parsed["default_device_ms"] > 0 and 0 < parsed["default_device_share"] < 2
        assert parsed["default_launches"] > 10 and parsed["default_bound"] in ("launch", "compute")
    else:
        assert parsed["default_device_share"] == "na" and parsed["default_launches"] == "na"
    assert parsed["default_dominant"] in gp.CATEGORIES and parsed["mode"] == "smoke"
    shares = [parsed[f"default_{c}_share"] for c in gp.CATEGORIES]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3) and parsed["default_matmul_share"] > 0
    assert {p.name for p in tmp_path.iterdir()} == {"profile_default.txt", "profile_default.json"}
    text = (tmp_path / "profile_default.txt").read_text()
    assert "verdict:" in text and f"top ops by self {'device' if cuda else 'CPU'} time" in text
    assert text.strip() in out
    res = json.loads((tmp_path / "profile_default.json").read_text())
    assert res["stack"] == int(stack) and (res["device_ms"] is None) == (res["bound"] is None) == (not cuda)
    assert sum(res["phases"].values()) == pytest.approx(1.0) and sum(res["categories"].values()) == pytest.approx(1.0)
    assert res["phases"]["forward"] > 0 and res["phases"]["backward"] > 0 and res["phases"]["update"] > 0
    assert res["categories"]["optimizer"] > 0 and res["categories"]["attention"] > 0 and len(res["top"]) >= 8
    assert fields["default_wall_ms"] == pytest.approx(res["wall_ms"])
    assert parsed["default_top"] == res["top"][0]["op"].replace(" ", "_").replace("(", "_").replace(")", "_")


def test_trace_and_argument_checks(gp, capsys, tmp_path):
    gp.main(["--smoke", "--stack", "2", "--trace", "--out", str(tmp_path)])
    trace = json.loads((tmp_path / "trace_default.json").read_text())
    assert any(e.get("name") == gp.STEP_LABEL for e in trace["traceEvents"])
    for bad in (["--stack", "0"], ["--stack", "many"], ["--shapes", "default,tiny"]):
        with pytest.raises(SystemExit):
            gp.main(["--smoke", *bad])


@pytest.mark.parametrize("op,kernel,phase,want", [
    ("aten::mm", "nvjet_tst_128x64_64x8_1x1_v_bz_TNT", "forward", "matmul"),
    ("aten::bmm", "", "backward", "matmul"),
    ("aten::baddbmm", "", "forward", "matmul"),
    ("aten::_scaled_dot_product_flash_attention", "pytorch_flash::flash_fwd_kernel", "forward", "attention"),
    ("aten::_efficient_attention_backward", "fmha_cutlassB", "backward", "attention"),
    ("aten::_fused_adamw_", "multi_tensor_apply_kernel", "update", "optimizer"),
    ("aten::mul_", "vectorized_elementwise_kernel", "update", "optimizer"),  # per-model clipping
    ("aten::mul_", "vectorized_elementwise_kernel", "forward", "elementwise"),
    ("aten::native_layer_norm_backward", "", "backward", "elementwise"),
    ("aten::gelu", "", "forward", "elementwise"),
    ("aten::nll_loss_backward", "", "backward", "loss"),
    ("aten::_log_softmax", "", "forward", "loss"),
    ("aten::copy_", "Memcpy HtoD (Pinned -> Device)", "forward", "memcpy"),
    ("aten::copy_", "direct_copy_kernel_cuda", "forward", "elementwise"),
    ("aten::embedding_dense_backward", "", "backward", "other"),
    ("", "sm90_xmma_gemm_bf16bf16_bf16f32", "", "matmul"),  # no op: by the kernel's name
    ("", "flash_bwd_dq_dk_dv_loop_kernel", "", "attention"),
    ("", "fmha_cutlassB_bf16_aligned_64x64_k64_sm80", "", "attention"),
    ("", "some_custom_kernel", "", "other"),
    ("mixopt.step", "multi_tensor_apply_kernel", "glue", "optimizer"),  # an annotation: by the kernel's name
    ("aten::index_select", "indexSelectLargeIndex", "forward", "other"),
])
def test_categories(gp, op, kernel, phase, want):
    assert gp.category(op, kernel, phase) == want


def test_bound_and_busy_time(gp):
    assert gp.bound_of(0.2) == "launch" and gp.bound_of(0.5) == "compute" and gp.bound_of(None) is None
    assert gp._busy_us([(0, 10), (5, 12), (20, 25), (21, 22)]) == 17


class _Range(SimpleNamespace):
    def elapsed_us(self):
        return self.end - self.start


def _ev(name, start, end, *, parent=None, kernels=(), device=DeviceType.CPU, self_cpu=None, annotation=False):
    return SimpleNamespace(name=name, time_range=_Range(start=start, end=end), cpu_parent=parent,
                           kernels=[SimpleNamespace(name=k, duration=d) for k, d in kernels], device_type=device,
                           is_async=False, self_cpu_time_total=(end - start) if self_cpu is None else self_cpu,
                           is_user_annotation=annotation)


def _fake_profile(gp, steps=2, annotations=False):
    """``steps`` steps of 100 us wall: mm (forward) -> MmBackward (backward) -> AdamW; a graph-replayed kernel.

    With ``annotations``, also the GPU-side ranges of the step's and the optimizer's annotations, as a real CUDA
    profile has them: ``mixopt.step`` from the first kernel's start to the last one's end, ``Optimizer.step``
    over its kernel; the optimizer's range is also linked to its op, as a kernel of it.
    """
    events = []
    for i in range(steps):
        t = 1000.0 * i
        step = _ev(gp.STEP_LABEL, t, t + 100, self_cpu=5, annotation=True)
        mm = _ev("aten::mm", t + 1, t + 10, parent=step, kernels=[("nvjet_gemm", 20)])
        launch = _ev("cudaLaunchKernel", t + 2, t + 3, parent=mm)
        engine = _ev("autograd::engine::evaluate_function: MmBackward0", t + 20, t + 50, parent=step)
        mm_b = _ev("aten::mm", t + 21, t + 40, parent=engine, kernels=[("nvjet_gemm", 30)])
        clip = _ev("aten::mul_", t + 55, t + 58, parent=step, kernels=[("vectorized_elementwise_kernel", 4)])
        opt = _ev("Optimizer.step#AdamW.step", t + 60, t + 90, parent=step, annotation=True,
                  kernels=[("Optimizer.step#AdamW.step", 6)] if annotations else ())
        adam = _ev("aten::_fused_adamw_", t + 61, t + 80, parent=opt, kernels=[("multi_tensor_apply_kernel", 6)])
        copy = _ev("aten::copy_", t + 91, t + 92, parent=step, kernels=[("Memcpy DtoD (Device -> Device)", 2)])
        gpu = [_ev(n, t + s, t + s + d, device=DeviceType.CUDA) for n, s, d in
               [("nvjet_gemm", 5, 20), ("nvjet_gemm", 30, 30), ("vectorized_elementwise_kernel", 62, 4),
                ("multi_tensor_apply_kernel", 70, 6), ("Memcpy DtoD (Device -> Device)", 92, 2),
                ("graph_kernel_gemm", 95, 8)]]  # the last one no op claims
        if annotations:
            gpu += [_ev(gp.STEP_LABEL, t + 5, t + 103, device=DeviceType.CUDA, annotation=True),
                    _ev("Optimizer.step#AdamW.step", t + 70, t + 76, device=DeviceType.CUDA, annotation=True)]
        events += [step, mm, launch, engine, mm_b, clip, opt, adam, copy, *gpu]
    events.append(_ev("ProfilerStep#1", 0, 2000))
    return SimpleNamespace(events=lambda: events)


def test_analyse_cuda_branch_on_a_hand_made_profile(gp):
    res = gp.analyse(_fake_profile(gp), 2, cuda=True, top=5)
    assert res["device_ms"] == pytest.approx(70 / 1e3)  # per step: 20 + 30 + 4 + 6 + 2 + 8 us, no overlap
    assert res["kernels"] == 5 and res["memcpys"] == 1 and res["launch_calls"] == 1
    assert res["profiled_ms"] == pytest.approx(0.103)  # from the step's host start to its last kernel's end
    cats = res["categories"]
    assert cats["matmul"] == pytest.approx(58 / 70) and cats["optimizer"] == pytest.approx(10 / 70)
    assert cats["memcpy"] == pytest.approx(2 / 70) and sum(cats.values()) == pytest.approx(1.0)
    phases = res["phases"]  # of the 62 us ops claim; the copy comes after the backward pass: update
    assert phases["backward"] == pytest.approx(30 / 62) and phases["update"] == pytest.approx(12 / 62)
    assert sum(phases.values()) == pytest.approx(1.0)
    top = res["top"][0]
    assert (top["op"], top["category"], top["main_kernel"]) == ("aten::mm", "matmul", "nvjet_gemm")
    assert top["ms_per_step"] == pytest.approx(0.05) and top["n_per_step"] == 2  # one forward, one backward kernel
    assert any(r["op"] == "(kernel) graph_kernel_gemm" and r["category"] == "matmul" for r in res["top"])
    assert res["host_top"][0]["op"] == "autograd::engine::evaluate_function: MmBackward0"
    fields = gp.summary_fields({**res, "shape": "wide", "stack": 4, "wall_ms": 0.1, "loop_ms": 0.12,
                                "batch_ms": 0.01, "device_share": 0.7, "bound": "compute", "dominant": "matmul"})
    assert fields["wide_launches"] == 5 and fields["wide_top"] == "aten::mm" and fields["wide_bound"] == "compute"
    text = gp.render({**res, "shape": "wide", "stack": 4, "params_per_model": 10, "vocab": 257, "batch_size": 2,
                      "block_size": 8, "dtype": "bfloat16", "device": "GPU", "compile": False, "cuda_graphs": False,
                      "profiled_steps": 2, "wall_ms": 0.1, "loop_ms": 0.12, "batch_ms": 0.01,
                      "tokens_per_s": 1.0, "device_share": 0.7, "bound": "compute", "peak_gib": 0.1,
                      "dominant": "matmul"})
    assert "compute-bound (device busy 70%" in text and "host: top ops by self CPU time" in text


FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for python3: gpu_profile.py writes its files under --out; everything prints a summary line
out=
while [ $# -gt 0 ]; do
    if [ "$1" = --out ]; then out=$2; fi
    echo "$1" >> "$FAKE_LOG"
    shift
done
if [ -n "$out" ]; then mkdir -p "$out"; for f in profile_default.txt profile_default.json trace_default.json; do
    echo '{}' > "$out/$f"; done; fi
echo "summary: fake=1"
"""


def run_session(tmp_path, **env):
    """Run benchmarks/gpu_session.sh with stand-ins for python3 and nvidia-smi; returns the $OUT folder."""
    if shutil.which("bash") is None or shutil.which("tar") is None:
        pytest.skip("bash and tar are needed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python3", FAKE_PYTHON), ("nvidia-smi", "#!/bin/sh\necho fake GPU\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out),
           "FAKE_LOG": str(tmp_path / "calls.log"), "WHEEL_DIR": str(tmp_path / "no-wheels"), **env}
    run = subprocess.run(["bash", str(BENCH / "gpu_session.sh")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return out


def test_session_script_brings_back_at_most_eight_files_with_the_profile_archived(tmp_path):
    """The device tool brings back at most 8 files, 2 folders down: the profile's files travel as profile.tgz."""
    out = run_session(tmp_path, GPU_PROFILE_ARGS="--stack 4")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(files) <= 8 and "profile.tgz" in files and "profile.log" in files, files
    assert all(f.count("/") <= 2 for f in files) and not (out / "profile").exists()
    with tarfile.open(out / "profile.tgz") as tar:
        names = set(tar.getnames())
    assert {"profile/profile_default.json", "profile/trace_default.json"} <= names
    assert "profile/sweep.log" in names  # the sweep's log travels in the archive
    calls = (tmp_path / "calls.log").read_text().split()
    assert "benchmarks/gpu_profile.py" in calls and "--trace" in calls and "--stack" in calls
    profile = calls[calls.index("benchmarks/gpu_profile.py"):]
    assert profile[profile.index("--shapes") + 1] == "default,wide,regmix"  # the profile's shapes, comma-separated
    assert "benchmarks/sweep_throughput.py" in calls
    summary = (out / "summary.txt").read_text()
    assert "== gpu_profile" in summary and summary.count("summary: fake=1") >= 6


def test_session_script_skips_stages_past_its_deadline(tmp_path):
    """With too little time left a stage is skipped and said so; the archive and summary are still written."""
    out = run_session(tmp_path, GPU_SESSION_LIMIT="10")
    summary = (out / "summary.txt").read_text()
    assert "== tests: skipped" in summary and "== gpu_profile: skipped" in summary
    assert (out / "profile.tgz").exists()


def test_kernels_of_a_graph_replay_go_by_their_names(gp):
    """A replayed CUDA graph's kernels belong to the step's annotation, not to ops: named and categorised by kernel."""
    step = _ev(gp.STEP_LABEL, 0, 100, kernels=[("nvjet_gemm", 40), ("multi_tensor_apply_kernel", 10)])
    gpu = [_ev("nvjet_gemm", 10, 50, device=DeviceType.CUDA), _ev("multi_tensor_apply_kernel", 60, 70,
                                                                    device=DeviceType.CUDA)]
    launch = _ev("cudaGraphLaunch", 2, 4, parent=step)
    res = gp.analyse(SimpleNamespace(events=lambda: [step, launch, *gpu]), 1, cuda=True)
    assert [r["op"] for r in res["top"]] == ["(kernel) nvjet_gemm", "(kernel) multi_tensor_apply_kernel"]
    assert res["categories"]["matmul"] == pytest.approx(0.8) and res["categories"]["optimizer"] == pytest.approx(0.2)
    assert res["launch_calls"] == 1 and res["kernels"] == 2 and not any(res["phases"].values())


def _without_annotation_flags(prof):
    """The same events as a torch without ``FunctionEvent.is_user_annotation`` gives them."""
    events = list(prof.events())
    for e in events:
        del e.is_user_annotation
    return SimpleNamespace(events=lambda: events)


@pytest.mark.parametrize("flags", [True, False], ids=["is_user_annotation", "by-name"])
def test_gpu_user_annotations_are_no_kernels(gp, flags):
    """The GPU-side ranges of ``mixopt.step`` (as long as the step) and ``Optimizer.step#AdamW.step`` (over its
    kernel, also linked to its op) count nowhere: not as kernels, in the device time, the top table, 'other',
    the optimizer's time or the shares' denominators. The real profile of the wide shape said 'other 49.8%'."""
    prof = _fake_profile(gp, annotations=True)
    res = gp.analyse(prof if flags else _without_annotation_flags(prof), 2, cuda=True, top=20)
    clean = gp.analyse(_fake_profile(gp), 2, cuda=True, top=20)
    assert res["device_ms"] == pytest.approx(70 / 1e3)  # the real kernels' busy time; with the range it was 98 us
    assert res["kernels"] == 5 and res["memcpys"] == 1 and res["profiled_ms"] == pytest.approx(0.103)
    cats = res["categories"]
    assert cats == pytest.approx(clean["categories"]) and sum(cats.values()) == pytest.approx(1.0)
    assert cats["other"] == 0 and cats["matmul"] == pytest.approx(58 / 70)
    assert cats["optimizer"] == pytest.approx(10 / 70)  # the kernel, not also the range over it
    assert res["phases"] == pytest.approx(clean["phases"])
    assert not any("mixopt.step" in r["op"] or "Optimizer.step" in r["op"] or r["main_kernel"].startswith(
        ("mixopt.step", "Optimizer.step")) for r in res["top"])
    assert [r["op"] for r in res["top"]] == [r["op"] for r in clean["top"]]
    assert [r["ms_per_step"] for r in res["top"]] == pytest.approx([r["ms_per_step"] for r in clean["top"]])
    assert sum(r["share"] for r in res["top"]) == pytest.approx(1.0)
    assert max(cats, key=cats.get) == "matmul" and res["top"][0]["op"] == "aten::mm"
    fields = gp.summary_fields({**res, "shape": "wide", "stack": 4, "wall_ms": 0.1, "loop_ms": 0.12,
                                "batch_ms": 0.01, "device_share": 0.7, "bound": "compute", "dominant": "matmul"})
    assert fields["wide_top"] == "aten::mm" and fields["wide_other_share"] == 0


def test_device_annotation_signal(gp):
    """torch's flag decides; without it (an older torch) a device event named after a host event is a range."""
    cuda = DeviceType.CUDA
    assert gp.is_device_annotation(_ev("mixopt.step", 0, 1, device=cuda, annotation=True))
    assert not gp.is_device_annotation(_ev("nvjet_gemm", 0, 1, device=cuda), {"nvjet_gemm"})  # flag says no
    assert gp.is_device_annotation(SimpleNamespace(name="x", activity_type="gpu_user_annotation"))
    assert not gp.is_device_annotation(SimpleNamespace(name="nvjet_gemm", activity_type="kernel"))
    assert gp.is_device_annotation(SimpleNamespace(name="mixopt.step"), {"mixopt.step", "aten::mm"})
    assert not gp.is_device_annotation(SimpleNamespace(name="nvjet_gemm"), {"mixopt.step", "aten::mm"})
