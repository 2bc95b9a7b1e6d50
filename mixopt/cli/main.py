"""The `mixopt` command. Each sub-command lives in its own `cmd_*.py` module,
loads its inputs, calls one library function and says where the result went.

A `MixoptError` becomes one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer

from ..errors import MixoptError

app = typer.Typer(
    name="mixopt",
    help="Data-mixture and data-selection optimizer for LM pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Sub-command modules register themselves on `app` when imported. An import
    # failure here is a bug and must not make a command silently disappear.
    # Imported in pipeline order, the order `mixopt --help` and the README list them (groups come last).
    from . import cmd_corpus, cmd_sweep, cmd_runs, cmd_fit, cmd_propose, cmd_pools  # noqa: F401
    from . import cmd_score, cmd_export, cmd_report, cmd_demo  # noqa: F401


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    _register()
    try:
        # standalone mode: typer prints usage errors itself and exits with code 2
        app(args=argv, prog_name="mixopt", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except MixoptError as exc:
        typer.echo("error: " + " ".join(str(exc).split()), err=True)  # always one line
        return 2
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover - `python -m mixopt.cli.main`
    # Run the imported module's app: commands register on `mixopt.cli.main.app`, not on this `__main__` copy.
    from mixopt.cli.main import main as _main

    _main()
