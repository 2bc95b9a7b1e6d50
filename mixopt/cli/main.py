"""The `mixopt` command. Each sub-command lives in its own `cmd_*.py` module,
loads its inputs, calls one library function and says where the result went.

A `MixoptError` becomes one line on stderr (`error: ...`) and exit code 2. A
usage error (a misspelt option, a missing argument, a bad value) is one line too,
pointing at the command's `--help`, with click's exit code; an abort prints
`error: aborted` (exit 1); Ctrl-C while training (:class:`mixopt.errors.Interrupted`) prints one
`interrupted: ...` line saying what is kept and how to resume (exit 130). The `mixopt` command prints each Python warning once,
as one `warning: ...` line (`run()` in tests leaves them as warnings). Anything
else is a bug and keeps its traceback.

Every command's ``--help`` ends with one example (:data:`EXAMPLES`, or an
``Example:`` line of its own docstring). The examples run, in order, on the tiny
config after the README's tour (``tests/test_docs_run.py``), so they must stay
true. Option values are labelled by what they hold (``PATH``, ``N``,
``DOMAIN=PATH``), never by Python type names, and flags carry no label.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import warnings

import typer
import typer.main

from .. import __version__
from ..errors import Interrupted, MixoptError

app = typer.Typer(
    name="mixopt",
    help="Data-mixture and data-selection optimizer for LM pretraining.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One runnable example per command, keyed by its path. They assume the README tour ran first in the same
# folder (runs/tiny, model.pkl, plan.yaml exist) and that the user brought the files the tour names.
EXAMPLES: dict[str, str] = {
    "sweep": "mixopt sweep configs/tiny.yaml --store runs/tiny --workers 1",
    "fit": "mixopt fit --store runs/tiny --target val/code --model linear --out models/code.pkl",
    "predict": "mixopt predict --model model.pkl --mixtures mixtures.csv --out predictions.csv",
    "propose": "mixopt propose configs/tiny.yaml --store runs/tiny --model model.pkl --budget-tokens 4e5 --no-projector --out plan-4e5.yaml",
    "plan-pools": "mixopt plan-pools configs/pools_tmars.yaml --budgets 32e6,640e6 --plot frontier.png",
    "score": "mixopt score --pool web=crawl.jsonl --target val.jsonl --max-docs 40",
    "export": "mixopt export plan.yaml --format hf-datasets --out hf/ --paths code=data/code.jsonl --paths dialogue=data/dialogue.jsonl "
              "--paths docs=data/docs.jsonl --paths legal=data/legal.jsonl --paths math=data/math.jsonl "
              "--paths multilingual=data/multilingual.jsonl --paths prose=data/prose.jsonl",
    "report": "mixopt report --store runs/tiny --plan plan.yaml --out report-plan/",
    "demo": "mixopt demo --config tiny --runs 2 --out demo-tiny",
    "corpus build": "mixopt corpus build --out corpus/ --size small",
    "corpus list": "mixopt corpus list --config configs/tiny.yaml",
    "runs list": "mixopt runs list --store runs/tiny",
    "runs show": "mixopt runs show natural --store runs/tiny",
    "runs export": "mixopt runs export --store runs/tiny --out runs.csv --format regmix",
    "runs import": "mixopt runs import --mixtures runs.mixtures.csv --metrics runs.metrics.csv --store runs/reimported",
    "verify": "mixopt verify plan.yaml --store runs/tiny --tokens 4e4 --seeds 1 --against natural --out verify.json",
    "select": "mixopt select --pool web=crawl.jsonl --target val.jsonl --method dsir --buckets 2 --out pools/",
}
EXAMPLE_LINE = re.compile(r"^\s*Example:\s*(mixopt\b.*?)\s*$", re.MULTILINE)
_PAIR_METAVAR = re.compile(r"^([A-Z][A-Z_]*=[A-Z]+)\b")  # help text that opens with e.g. DOMAIN=PATH


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mixopt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                       help="Print mixopt's version and exit.")) -> None:
    """Data-mixture and data-selection optimizer for LM pretraining."""


def _register() -> None:
    # Sub-command modules register themselves on `app` when imported. An import
    # failure here is a bug and must not make a command silently disappear.
    # Imported in pipeline order, the order `mixopt --help` and the README list them (groups come last).
    from . import cmd_corpus, cmd_sweep, cmd_runs, cmd_fit, cmd_propose, cmd_pools  # noqa: F401
    from . import cmd_score, cmd_export, cmd_report, cmd_demo  # noqa: F401
    from . import cmd_select  # noqa: F401
    from . import cmd_verify  # noqa: F401
    # A module imported before `main` (e.g. by a test) registers early; put every command back in pipeline order.
    order = [m.__name__ for m in (cmd_corpus, cmd_sweep, cmd_runs, cmd_fit, cmd_propose, cmd_pools, cmd_score, cmd_export,
                                  cmd_report, cmd_demo, cmd_select, cmd_verify)]
    app.registered_commands.sort(key=lambda info: order.index(info.callback.__module__) if info.callback.__module__ in order else len(order))
    _attach_examples(app, ())


def _attach_examples(typer_app: typer.Typer, prefix: tuple[str, ...]) -> None:
    """Give each command whose help has no ``Example:`` line the one in :data:`EXAMPLES`, as its epilog."""
    for info in typer_app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        example = EXAMPLES.get(" ".join((*prefix, name)))
        own = f"{info.help or info.callback.__doc__ or ''}\n{info.epilog or ''}"
        if example and not EXAMPLE_LINE.search(own):
            info.epilog = f"Example: {example}"
    for group in typer_app.registered_groups:
        _attach_examples(group.typer_instance, (*prefix, group.name or ""))


def example_of(cmd) -> str | None:
    """The example command line in a built (click) command's help or epilog, if any."""
    m = EXAMPLE_LINE.search(f"{cmd.help or ''}\n{cmd.epilog or ''}")
    return m.group(1) if m else None


def metavar_of(param) -> str:
    """What an option's value holds: '' for flags, ``DOMAIN=PATH`` when its help opens with one, else PATH/N/NUMBER/TEXT."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    m = _PAIR_METAVAR.match(getattr(param, "help", None) or "")
    if m:
        return m.group(1)
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(str(c) for c in desc.choices or ())
    bare = param.bare_type().removeprefix("list[").removesuffix("]")
    return {"Path": "PATH", "int": "N", "float": "NUMBER"}.get(bare, "TEXT")


def build_command():
    """The click command of the whole CLI, with plain value labels (shared by `run` and the reference)."""
    _register()
    root = typer.main.get_command(app)

    def walk(cmd) -> None:
        help_option = cmd.get_help_option(typer.Context(cmd))  # created once and cached on the command
        for param in [*cmd.params, *([help_option] if help_option is not None else [])]:
            if param.param_type_name == "argument":
                param.metavar = param.name.upper()
                param.display_type_rich = lambda ctx: ""  # its NAME column already says what it is
            elif param.param_type_name == "option":
                param.metavar = metavar_of(param)
        for sub in (getattr(cmd, "commands", None) or {}).values():
            walk(sub)

    walk(root)
    return root


def warning_line(said: set[str]):
    """A ``warnings.showwarning`` that prints ``warning: MESSAGE`` on one line of stderr, each message once per command
    (Python's own form is two lines with a source path and a code line, which reads like a crash)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text not in said:
            said.add(text)
            typer.echo(f"warning: {text}", err=True)
    return show


def run(argv: list[str] | None = None, *, plain_warnings: bool = False) -> int:
    """Run the CLI and return its exit code (tests call this directly). ``plain_warnings`` (the ``mixopt`` command):
    Python warnings print as one ``warning: ...`` line each (tests leave it off, so ``pytest.warns`` still sees them)."""
    with warnings.catch_warnings():
        if plain_warnings:
            warnings.showwarning = warning_line(set())
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    command = build_command()
    try:
        # not standalone: click's usage errors come here, to be said in one line like every other error
        code = command.main(args=argv, prog_name="mixopt", standalone_mode=False)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Interrupted as exc:  # Ctrl-C during training: what is kept, and how to go on
        args = sys.argv[1:] if argv is None else argv
        typer.echo(f"interrupted: {exc}; rerun the same command to resume: mixopt {shlex.join(args)}", err=True)
        return 130
    except MixoptError as exc:
        typer.echo("error: " + " ".join(str(exc).split()), err=True)  # always one line
        return 2
    except Exception as exc:  # click's (typer's own copy of click since 0.29) usage errors, by what they carry
        if not (hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)):
            raise  # a bug: keep its traceback
        if type(exc).__name__ == "NoArgsIsHelpError":  # `mixopt` or a group alone: its help, as click prints it
            exc.show()
            return exc.exit_code
        # a misspelt option, a missing argument, a value of the wrong type: one line, like every other error
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo("error: " + " ".join(exc.format_message().split()) + hint, err=True)
        return exc.exit_code
    return code if isinstance(code, int) else 0  # an int only from typer.Exit / ctx.exit


def main() -> None:
    code = run(plain_warnings=True)
    if code == 130:  # Ctrl-C: the workers are stopped and every finished run is on disk, and the one line is out.
        sys.stdout.flush()  # The interpreter's exit handlers still run (pipes and semaphores cleaned up), but under load
        sys.stderr.flush()  # they can trip over the stopped pool's pipes: their traceback would only hide that line.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this process's life
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover - `python -m mixopt.cli.main`
    # Run the imported module's app: commands register on `mixopt.cli.main.app`, not on this `__main__` copy.
    from mixopt.cli.main import main as _main

    _main()
