#!/usr/bin/env bash
# One GPU session for issue 14, prepared ahead: the GPU tests, benchmarks/gpu_throughput.py per shape (eager and
# CUDA-graphed steps), benchmarks/sweep_throughput.py (the demo config end to end), benchmarks/gpu_step_variants.py
# (the step's implementation choices side by side), then benchmarks/gpu_profile.py (what dominates a training step);
# logs under $OUT.
#
# Two steps (docs/GPU.md):
#
#   1. here, on a machine with pip and the network, in the repo root:
#        bash benchmarks/gpu_session.sh prepare
#      downloads the wheels the GPU image lacks (pydantic and its parts, datasets and its parts; cp312, x86-64),
#      at the versions of this environment, into .whl/ (ignored through .git/info/exclude).
#   2. on the GPU machine (the device tool's run, carry [".whl"], timeout_s 600):
#        bash benchmarks/gpu_session.sh
#      installs the wheels into /tmp/site, writes env.txt, pytest.log, bench_<shape>.log, profile.log, summary.txt
#      and profile.tgz (profile/: the profile's tables, numbers and traces, the sweep's log and stack_probe.json)
#      under $OUT (8 files: the tool brings back at most 8), within GPU_SESSION_LIMIT seconds (default 570).
#
# Each stage has its own time limit, so a slow one cannot take the others' logs with it, and none runs past the
# session's deadline (a stage is cut to what is left, or skipped under 20 s). Override with
# GPU_SESSION_TOKENS (tokens per proxy, default 524288), GPU_SESSION_SHAPES (default "default wide regmix"),
# GPU_SESSION_ARGS (more gpu_throughput.py flags, e.g. "--compile"), GPU_PROFILE_ARGS (more gpu_profile.py flags,
# e.g. "--stack 16" or "--cuda-graphs"), GPU_VARIANTS_ARGS (more gpu_step_variants.py flags, e.g. "--compile", which
# adds the compile, compgraph and compres arms), GPU_VARIANTS_LIMIT (that stage's seconds, default 90; its arms stop
# starting 15 s before), GPU_SWEEP_ARGS (more sweep_throughput.py flags, e.g. "--proxy compile=true").
set -uo pipefail

WHEEL_DIR=${WHEEL_DIR:-.whl}
# what the GPU image (docs: /work/.library/device/KINDS.md, "Python packages already there") lacks, as pip names;
# typer: the image has one, but mixopt needs 0.29 (it vendors its own click)
WHEELS=(pydantic pydantic-core annotated-types typing-inspection typing-extensions datasets dill multiprocess lightgbm pot typer)

prepare() {
    if [ "$WHEEL_DIR" = ".whl" ] && [ -d .git ] && ! grep -qxF '/.whl/' .git/info/exclude 2>/dev/null; then
        echo '/.whl/' >> .git/info/exclude
    fi
    mkdir -p "$WHEEL_DIR"
    local py=${PYTHON:-python3} name version
    for name in "${WHEELS[@]}" ${EXTRA_WHEELS:-}; do
        version=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null)
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEEL_DIR" \
            "${name}${version:+==$version}" || { echo "could not download $name${version:+==$version}" >&2; return 1; }
    done
    ls -la "$WHEEL_DIR"
    du -sh "$WHEEL_DIR"
}

stage() {  # stage NAME SECONDS LOG COMMAND...: run with a time limit, log to $OUT/LOG, note the exit code
    local name=$1 limit=$2 log=$3 t0 rc left
    shift 3
    t0=$(date +%s)
    left=$(( DEADLINE - t0 ))  # what the session has left before its own deadline (the archive step needs ~10 s)
    if [ "$left" -lt 20 ]; then
        echo "== $name: skipped, ${left}s left of the session's ${SESSION_LIMIT}s" | tee -a "$OUT/summary.txt"
        return
    fi
    [ "$limit" -gt $(( left - 10 )) ] && limit=$(( left - 10 ))
    echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/summary.txt"
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
    grep -h '^summary: \|passed\|failed\|error' "$OUT/$log" | tail -n 3 | tee -a "$OUT/summary.txt"
}

run_session() {
    SESSION_LIMIT=${GPU_SESSION_LIMIT:-570}  # seconds; the device tool's run allows 600
    DEADLINE=$(( $(date +%s) + SESSION_LIMIT ))
    OUT=${OUT:-$PWD/gpu-session-out}
    mkdir -p "$OUT"
    : > "$OUT/summary.txt"
    if ls "$WHEEL_DIR"/*.whl > /dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEEL_DIR"/*.whl || { echo "wheel install failed" | tee -a "$OUT/summary.txt"; exit 1; }
        export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # mixopt from the checkout, not installed
    export MIXOPT_CACHE=/tmp/mixopt-cache PYTHONUNBUFFERED=1 HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
    {
        date -u
        nvidia-smi
        python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
        python3 -m pip show pyarrow fsspec huggingface-hub typing-extensions numpy 2> /dev/null | grep -E '^(Name|Version)'
        python3 -c "import mixopt, pydantic, datasets; print('mixopt', mixopt.__version__, 'pydantic', pydantic.VERSION, 'datasets', datasets.__version__)"
    } > "$OUT/env.txt" 2>&1
    stage tests 130 pytest.log python3 -m pytest -o addopts= -q -m "slow or not slow" -rs -p no:cacheprovider \
        tests/test_gpu_path.py tests/test_chunked_ce.py tests/test_cuda_graphs.py tests/test_gpu_profile.py
    local tokens=${GPU_SESSION_TOKENS:-524288} shapes=${GPU_SESSION_SHAPES:-default wide regmix} shape limit
    mkdir -p "$OUT/profile"
    # in order of what the next session needs most: the goals (throughput, eager against CUDA-graphed steps),
    # a sweep end to end, then what dominates a step; a stage that would pass the deadline is cut short or skipped
    for shape in $shapes; do
        case $shape in wide) limit=115 ;; regmix) limit=110 ;; *) limit=80 ;; esac
        stage "gpu_throughput $shape" "$limit" "bench_$shape.log" \
            python3 benchmarks/gpu_throughput.py --shapes "$shape" --tokens "$tokens" --repeats 2 --cuda-graphs \
            ${GPU_SESSION_ARGS:-}
    done
    stage "sweep end to end" 50 profile/sweep.log python3 benchmarks/sweep_throughput.py --config demo --runs 8 \
        ${GPU_SWEEP_ARGS:-}
    # the step's implementation choices side by side (folded norms, bf16 softmax, graphs; --compile is slower to run)
    local vlimit=${GPU_VARIANTS_LIMIT:-90}  # the compile arms take tens of seconds each: raise it for --compile
    stage "step variants" "$vlimit" profile/variants.log python3 benchmarks/gpu_step_variants.py \
        --deadline $(( vlimit - 15 )) \
        --shapes "$(echo $shapes | tr ' ' ,)" ${GPU_VARIANTS_ARGS:-}
    stage gpu_profile 75 profile.log python3 benchmarks/gpu_profile.py --shapes "$(echo $shapes | tr ' ' ,)" \
        --out "$OUT/profile" --trace ${GPU_PROFILE_ARGS:-}
    if cp "$MIXOPT_CACHE/stack_probe.json" "$OUT/profile/" 2> /dev/null; then
        { echo "== stack_probe.json"; cat "$MIXOPT_CACHE/stack_probe.json"; echo; } >> "$OUT/summary.txt"
    fi
    # the tool brings back at most 8 files and 16 MiB a file: the profile's files travel as one archive,
    # without the chrome traces if they would make it too big
    if tar -czf "$OUT/profile.tgz" -C "$OUT" profile; then
        if [ "$(stat -c %s "$OUT/profile.tgz")" -gt 15000000 ]; then
            tar -czf "$OUT/profile.tgz" -C "$OUT" --exclude='trace_*' profile
        fi
        rm -rf "$OUT/profile"
    fi
    echo "logs in $OUT: $(ls "$OUT" | tr '\n' ' ')"
}

case ${1:-run} in
    prepare) prepare ;;
    run) run_session ;;
    *) echo "usage: bash benchmarks/gpu_session.sh [prepare|run]" >&2; exit 2 ;;
esac
