"""Executors only schedule: in this process, in N local worker processes, or as Ray tasks.

Every executor hands groups of runs to :func:`mixopt.runs.sweep.execute_runs`,
which claims, trains and records them, so all of them share the same resume and
no-duplicate rules. On a CUDA device the in-process executor groups runs that
share a proxy config and trains each group as one stacked model.

Threads: a run uses ``proxy.threads`` CPU threads, by default
:data:`DEFAULT_THREADS_PER_RUN` (1), and parallelism comes from running several
runs at once. Float reductions depend on the thread count, so with the default
every executor gives bit-identical results; one thread per run also keeps a
sweep's throughput when another process takes a core (intra-op threads of one
run wait on each other, and a busy core stalls them all; measured by
``benchmarks/load_throughput.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import multiprocessing.util as mp_util
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..config import SweepConfig
from ..data.types import DomainSet
from ..errors import ConfigError, MixoptError, interrupted, require
from ..proxy.device import pick_device
from ..proxy.step import uses_graphs
from ..proxy.train import choose_stack_size
from .record import RunSpec
from .store import RunStore
from .sweep import RunOutcome, SweepSummary, execute_runs

DEFAULT_THREADS_PER_RUN = 1  # see the module docstring and benchmarks/load_throughput.py
PROCESS_MIN_TOKENS = 1_000_000  # pending training tokens below which starting worker processes (~3 s each) costs more than it saves
_WORKER_DATA: list[DomainSet] = []  # the tokenized data in a worker process, set once by _init_worker


def threads_per_run(cfg: SweepConfig) -> int:
    """CPU threads for one proxy run: ``proxy.threads`` when pinned, else :data:`DEFAULT_THREADS_PER_RUN`."""
    return cfg.proxy.threads or DEFAULT_THREADS_PER_RUN


def default_workers(cfg: SweepConfig) -> int:
    """Local worker processes when neither the config nor the CLI sets them: one per core's worth of threads.

    Until stop 32 it was one more, on the argument that with N workers beside one busy process a fair scheduler leaves
    the sweep N/(N+1) of the cores (75% for 3 workers on 2 cores, 67% for 2). Measured on a quiet 2-core machine
    (``benchmarks/load_throughput.py --only default,3x1t --repeats 4`` now; 2026-12-02), the extra worker lost in every
    repeat: 0.86x the tokens/s of 2 workers idle and 0.89x with one core taken (each keeps over 70% of its idle
    throughput under that load: 0.73 and 0.71), and the demo's sweep took 81 s against 71-77 s: time-slicing three
    training processes on two cores costs more than the share of the cores it wins.
    """
    return max(1, (os.cpu_count() or 1) // threads_per_run(cfg))


def choose_workers(cfg: SweepConfig, workers: int | None, pending: list[RunSpec]) -> int:
    """Local worker processes: ``workers`` (the CLI), else the config's ``workers`` when it sets one, else
    :func:`default_workers` when the pending work is worth starting processes for (on CPU), else 1."""
    if workers is not None:
        return workers
    if cfg.workers is not None:
        return cfg.workers
    n = min(default_workers(cfg), len(pending))
    tokens = sum(int(s.proxy.get("tokens", 0)) for s in pending)
    if n <= 1 or tokens < PROCESS_MIN_TOKENS or pick_device(cfg.proxy).type == "cuda":
        return 1
    return n


def _tally(summary: SweepSummary, result: RunOutcome, on_run) -> None:
    """Count one finished run in the summary and tell the progress display."""
    if result.outcome == "trained":
        summary.trained += 1
        if result.reason:
            summary.failed.append(f"{result.run_id}: {result.reason}")
    else:
        summary.skipped += 1
    if on_run:
        on_run(result.run_id, result.outcome, result.reason)


def _init_worker(data: DomainSet, parent: int | None = None) -> None:
    """A pool worker's start: keep the data, and die with the sweep that started it (``parent``), even when that is
    killed with SIGKILL, so no orphan keeps training into the store."""
    _WORKER_DATA[:] = [data]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # born ignoring it (:func:`_run_pool`); keep it so under any library
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))  # the kernel kills this worker when its parent ends
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the sweep ended before the line above took effect
        os._exit(1)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


class _Terminated(SystemExit):
    """SIGTERM (or SIGHUP) reached a sweep that runs worker processes: unwinds it so that its workers are stopped."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated(128 + signum)


def _run_pool(specs: list[RunSpec], store: RunStore, data: DomainSet, *, workers: int, threads: int,
              summary: SweepSummary, on_run, task: Callable | None = None) -> None:
    """Train ``specs`` in ``workers`` spawned processes, one run per task.

    The first error (a record that cannot be written, a bug) stops the sweep at once: queued runs are cancelled and
    running workers stopped (a run they were training is lost, its claim freed and any half-written temporary is
    removed by the next sweep), then the error is raised. SIGTERM, SIGHUP and Ctrl-C do the same; workers also die
    with the sweep when it is killed outright (:func:`_init_worker`). ``task``: what a worker runs (default
    :func:`_worker`; tests pass a stand-in).
    """
    task = task or _worker
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(data, os.getpid()))
    handlers = {}
    main = threading.current_thread() is threading.main_thread()
    if main:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, _raise_terminated)
    try:
        with _workers_ignore_sigint(main):  # the pool starts its processes in the first `workers` submits
            futures = [pool.submit(task, [s], str(store.root), threads) for s in specs]
        for fut in as_completed(futures):
            for result in fut.result():
                _tally(summary, result, on_run)
    except BaseException:
        _stop_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _workers_ignore_sigint(main: bool):
    """Worker processes started inside this block are born ignoring SIGINT; a Ctrl-C meanwhile is held until it ends.

    Ctrl-C in a terminal reaches the whole process group; only the sweep should act on it, by stopping its workers
    (:func:`_stop_pool`), so that no worker prints a KeyboardInterrupt traceback, even one still importing. An ignored
    signal stays ignored across exec, and Python then installs no KeyboardInterrupt handler, so SIGINT is ignored around
    each fork+exec (``multiprocessing.util.spawnv_passfds``, which the spawn start method calls; blocking it instead
    does not carry over, CPython's spawn clears the signal mask). A Ctrl-C at any other moment of the block (e.g. while
    a worker reads its data from the pipe: cut short, it would die on a truncated pickle with a traceback) is recorded
    and raised as KeyboardInterrupt when the block ends, so it stops the sweep a moment later, never lost.

    A Ctrl-C *during* a fork+exec would be discarded while SIGINT is ignored (the sweep then trained on: review 32, a
    CI failure under load), so this thread also blocks SIGINT for the whole block: on Linux a blocked signal is kept
    pending even while ignored, and runs the hold handler when the block unblocks it. Setting SIG_IGN discards a pending
    one, so it is recorded first. (A thread started before the block that does not block SIGINT could still take one
    during a fork+exec and lose it; mixopt's progress bars start theirs through :func:`entered_without_sigint`, other
    libraries' threads remain.) Where the spawn function is missing, SIGINT is ignored for the whole block.
    """
    if not main:  # signal handlers can only be set in the main thread; workers then stop with the sweep as before
        yield
        return
    real = getattr(mp_util, "spawnv_passfds", None)
    if real is None or not hasattr(signal, "pthread_sigmask"):
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)
        return
    held: list[int] = []

    def hold(signum, frame) -> None:
        held.append(signum)

    def spawn_ignoring_sigint(*args, **kwargs):
        if signal.SIGINT in signal.sigpending():  # ignoring SIGINT discards a pending one: note it first
            held.append(signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return real(*args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, hold)

    old = signal.signal(signal.SIGINT, hold)
    try:
        with _sigint_blocked():  # threads the pool starts here inherit the block; on leaving, a pending Ctrl-C runs `hold`
            mp_util.spawnv_passfds = spawn_ignoring_sigint
            try:
                yield
            finally:
                mp_util.spawnv_passfds = real
    finally:
        signal.signal(signal.SIGINT, old)
    if held:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread for the block (where threads have signal masks: not on Windows); threads started
    inside inherit the block, and a Ctrl-C that came meanwhile is delivered, here, when the block ends."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextlib.contextmanager
def entered_without_sigint(cm):
    """``with cm``, its ``__enter__`` run with SIGINT blocked in this thread: the threads it starts (a progress bar's
    refresh thread) inherit the block and never take a Ctrl-C, which then always reaches the main thread. A Ctrl-C
    such a thread took while SIGINT is ignored for a worker's fork+exec (:func:`_workers_ignore_sigint`) was lost."""
    with contextlib.ExitStack() as stack:
        with _sigint_blocked():
            value = stack.enter_context(cm)
        yield value


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and stop the running workers now (not after every queued run has trained); a second
    Ctrl-C meanwhile does not cut this short."""
    main = threading.current_thread() is threading.main_thread()
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        _stop_workers(pool)
    finally:
        if main:
            signal.signal(signal.SIGINT, old_int)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)
    # Let the pool's manager thread see its dead workers and close its wakeup pipe now: at interpreter exit
    # concurrent.futures wakes every manager thread, and Python 3.11 races that write with the thread's own close
    # (an "Exception in threading ... Bad file descriptor" traceback after the one-line Ctrl-C message).
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None and manager is not threading.current_thread():
        manager.join(timeout=10)


def _worker(specs: list[RunSpec], store_root: str, threads: int, data: DomainSet | None = None) -> list[RunOutcome]:
    """One task in another process: the data comes with the task (Ray) or from the worker's initializer."""
    return execute_runs(specs, RunStore(store_root), data if data is not None else _WORKER_DATA[0], wait=True, threads=threads)


def _stack_size(cfg: SweepConfig, data: DomainSet) -> int:
    """How many proxies to train together: 1 on CPU (stacking is slower there), more on a GPU."""
    device = pick_device(cfg.proxy)
    if device.type != "cuda":
        return 1
    return choose_stack_size(cfg.proxy, device, vocab_size=data.vocab_size)


def _groups(specs: list[RunSpec], size: int) -> list[list[RunSpec]]:
    """Consecutive groups of at most ``size`` runs that share a proxy config (one scale)."""
    out: list[list[RunSpec]] = []
    for spec in specs:
        if out and len(out[-1]) < size and out[-1][0].proxy == spec.proxy:
            out[-1].append(spec)
        else:
            out.append([spec])
    return out


def run_local(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, data: DomainSet, *, workers: int = 1,
              on_run: Callable[[str, str, str], None] | None = None, on_step: Callable[[int, int], None] | None = None,
              on_info: Callable[[str], None] | None = None) -> SweepSummary:
    """Train the pending runs here (stacked on a GPU), or in ``workers`` processes; ``on_info`` hears how. Ctrl-C
    stops the workers and raises :class:`mixopt.errors.Interrupted` (the finished runs stay in the store)."""
    try:
        return _run_local(specs, cfg, store, data, workers=workers, on_run=on_run, on_step=on_step, on_info=on_info)
    except KeyboardInterrupt:
        raise interrupted(store) from None


def _run_local(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, data: DomainSet, *, workers: int,
               on_run, on_step, on_info) -> SweepSummary:
    summary = SweepSummary(planned=len(specs))
    t0 = time.perf_counter()
    threads = threads_per_run(cfg)
    if workers <= 1:
        stack = _stack_size(cfg, data)
        if stack > 1 and on_info and specs:
            steps = ("CUDA-graphed" if uses_graphs(cfg.proxy, pick_device(cfg.proxy)) else
                     "compiled" if cfg.proxy.compile else "eager")
            on_info(f"training up to {stack} proxies per stack (the stack probe's choice for this shape, cached in "
                    f"$MIXOPT_CACHE/stack_probe.json); {steps} steps")
        deferred = []
        for group in _groups(specs, stack):
            for result, spec in zip(execute_runs(group, store, data, wait=False, stacked=stack > 1, progress=on_step,
                                                 threads=threads), group):
                if result.outcome == "busy":
                    deferred.append(spec)  # another sweep is training it; come back after the rest
                else:
                    _tally(summary, result, on_run)
        for spec in deferred:
            _tally(summary, execute_runs([spec], store, data, wait=True, progress=on_step, threads=threads)[0], on_run)
    else:
        _run_pool(specs, store, data, workers=workers, threads=threads, summary=summary, on_run=on_run)
    summary.seconds = time.perf_counter() - t0
    return summary


def check_ray_address(address: str | None) -> None:
    """Fail at once, in one line, when a ``host:port`` Ray address has nothing listening (Ray itself retries for a minute)."""
    if not address or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--ray-address must be host:port, 'auto' or ray://host:port. Got {address!r}. "
                          "Use the address `ray start --head` printed.")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"Cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}). "
                          "Start one with `ray start --head` or drop --ray-address.") from None


def _ray_env() -> dict:
    """Environment a Ray started here passes to its workers: the cache (tokens, dtype decision) and offline flags."""
    keys = ("MIXOPT_CACHE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_HOME")
    return {"env_vars": {k: os.environ[k] for k in keys if k in os.environ}}


def run_ray(specs: list[RunSpec], cfg: SweepConfig, store: RunStore, data: DomainSet, *, address: str | None = None,
            max_retries: int = 3, on_run: Callable[[str, str, str], None] | None = None) -> SweepSummary:
    """Train pending runs as Ray tasks; a task whose worker dies is retried by Ray.

    Each task reserves as many CPUs as its run uses threads, so Ray places runs
    per node without oversubscribing cores. The data travels through Ray's object
    store; the run store must be on a filesystem every node can reach.
    """
    ray = require("ray", "ray")
    check_ray_address(address)
    summary = SweepSummary(planned=len(specs))
    t0 = time.perf_counter()
    started_here = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     runtime_env=_ray_env() if address is None else None)
        except ConnectionError as exc:
            raise ConfigError(f"Cannot reach the Ray cluster at {address!r} ({exc}). Start one with `ray start --head` or drop --ray-address.") from None
        started_here = True
    try:
        threads = threads_per_run(cfg)
        task = ray.remote(max_retries=max_retries, retry_exceptions=False, num_cpus=threads)(_worker)
        data_ref = ray.put(data)
        root = str(store.root.resolve())
        pending = [task.remote([s], root, threads, data_ref) for s in specs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                results = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # surface a user error as itself, not a wrapped traceback
                if isinstance(exc.cause, MixoptError):
                    raise exc.cause from None
                raise
            for result in results:
                _tally(summary, result, on_run)
    finally:
        if started_here:  # stops a Ray started here; only disconnects from a cluster given by address
            ray.shutdown()
    summary.seconds = time.perf_counter() - t0
    return summary
