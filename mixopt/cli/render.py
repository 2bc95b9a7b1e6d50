"""Shared by several commands: ``NAME=VALUE`` option parsing and progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ConfigError, ExportError


def parse_pairs(items: list[str], option: str, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` with one-line errors naming ``option``."""
    out: dict[str, str] = {}
    for item in items:
        domain, sep, value = item.partition("=")
        domain, value = domain.strip(), value.strip()
        if not sep or not domain or not value:
            example = "512" if what == "N" else "/data/code"
            raise ExportError(f"{option} takes DOMAIN={what}. Got {item!r}. Write it as e.g. {option} code={example}.")
        if domain in out:
            raise ExportError(f"{option} may name each domain once. Got '{domain}' twice ({out[domain]!r} and {value!r}). Keep one.")
        out[domain] = value
    return out


@contextmanager
def progress_bars(console: Console) -> Iterator:
    """A ``progress(label, done, total)`` callback drawing one bar per label (pool runs, steps of the current run);
    a no-op where the console is not a terminal (a log or a pipe gets no bars, and no blank line where they were)."""
    if not console.is_terminal:
        yield lambda label, done, total: None
        return
    from ..runs.executors import entered_without_sigint  # here: importing it loads torch, which `export` never needs

    with entered_without_sigint(Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), console=console, transient=True)) as bars:
        tasks: dict[str, int] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bars.add_task(label, total=total)
            bars.update(tasks[label], completed=done, total=total)

        yield progress


def only_with(needs: str, active: bool, **given: bool) -> None:
    """Options that act only with ``needs``: given without it they would be ignored silently, so that is a one-line
    error (``given``: option name, with ``_`` for ``-``, to whether it was passed)."""
    stray = ["--" + name.replace("_", "-") for name, passed in given.items() if passed]
    if stray and not active:
        raise ConfigError(f"{', '.join(stray)} act{'s' if len(stray) == 1 else ''} only with {needs}; without it "
                          f"{'it' if len(stray) == 1 else 'they'} would be ignored. Add {needs}, or drop "
                          f"{'it' if len(stray) == 1 else 'them'}.")
