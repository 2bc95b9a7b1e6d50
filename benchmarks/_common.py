"""What every benchmark shares: its one summary line, the parser for it, and where and when it ran.

Each benchmark ends by printing exactly one line::

    summary: rho_1m=0.9948 goal_rho_1m=0.993 met_rho_1m=yes mode=full

``key=value`` pairs separated by spaces. A figure ``x`` may come with its goal
``goal_x`` and ``met_x=yes|no``; ``met=yes|no`` is the overall verdict where a
benchmark has one. ``run_all.py`` and ``tests/test_benchmarks.py`` read these
lines with :func:`parse_summary`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import sys

PREFIX = "summary:"
TEXT_KEYS = ("mode",)  # keys whose values are words, besides met / met_*


def paired_seeds(text: str) -> int:
    """argparse type of a benchmark's ``--seeds``: 2 or more, since one seed gives verify no paired interval."""
    import argparse

    n = int(text)
    if n < 2:
        raise argparse.ArgumentTypeError(f"{n} seed(s): verify needs 2 or more paired seeds for an interval")
    return n


def fmt(value) -> str:
    """One value as a token without spaces: numbers to 6 significant digits, booleans as yes/no, None as na."""
    if value is None:
        return "na"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    text = str(value)
    if not text or any(c.isspace() or c == "=" for c in text):
        raise ValueError(f"summary values must be one word without '='; got {text!r}")
    return text


def summary_line(fields: dict) -> str:
    return PREFIX + " " + " ".join(f"{k}={fmt(v)}" for k, v in fields.items())


def print_summary(fields: dict) -> dict:
    """Print the summary line (the benchmark's last line) and return the fields."""
    print(summary_line(fields), flush=True)
    return fields


def goal(name: str, value: float, target: float, *, higher_is_better: bool = True) -> dict:
    """``{name: value, goal_name: target, met_name: yes/no}``; nan never meets its goal."""
    ok = (value >= target) if higher_is_better else (value <= target)
    return {name: value, f"goal_{name}": target, f"met_{name}": bool(ok) and not math.isnan(value)}


def parse_value(token: str):
    try:
        return float(token)
    except ValueError:
        return token


def parse_summary(text: str) -> dict:
    """The fields of the last ``summary:`` line in ``text``; ValueError when there is none or it is malformed."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(PREFIX)]
    if not lines:
        raise ValueError("no 'summary:' line in the output")
    out = {}
    for token in lines[-1][len(PREFIX):].split():
        key, sep, value = token.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"summary token {token!r} is not key=value")
        out[key] = parse_value(value)
    if not out:
        raise ValueError("the summary line has no key=value pairs")
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict:
    """Date (UTC), CPU model and count, the 1-minute load average now, Python and torch versions, GPU if any."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch = sys.modules.get("torch")
    gpu = None
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {"date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": _cpu_model(),
            "nproc": os.cpu_count(), "load": round(load, 2), "python": platform.python_version(),
            "torch": getattr(torch, "__version__", None), "gpu": gpu}


def machine_line(start: dict, end: dict | None = None) -> str:
    """``machine: ...`` with the load average at the start (and end) of the run."""
    last = end or start  # torch may be imported only during the run
    load = f"load average {start['load']:.2f}" + (f" -> {end['load']:.2f}" if end else "")
    torch = f", torch {last['torch']}" if last.get("torch") else ""
    gpu = f", GPU {last['gpu']}" if last.get("gpu") else ", no GPU"
    return (f"machine: {start['nproc']} x {start['cpu']}{gpu}; {load} on {start['nproc']} cores; "
            f"Python {start['python']}{torch}; {start['date']}")
