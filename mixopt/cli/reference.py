"""Markdown CLI reference generated from the typer app, so the README cannot drift.

`python -m mixopt.cli.reference` prints it, `... --write README.md` updates the README; a test checks the README holds it
verbatim, and `tests/test_docs_run.py` runs each command's example line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .main import build_command, example_of

START, END = "<!-- cli-reference:start -->\n", "<!-- cli-reference:end -->"


def iter_commands(root=None, path: tuple[str, ...] = ()):
    """``(path, click command)`` of every leaf command, in registration (= pipeline) order."""
    root = build_command() if root is None else root
    subs = getattr(root, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from iter_commands(sub, (*path, name))
    else:
        yield path, root


def cli_reference() -> str:
    intro = ("`mixopt --version` prints the installed version. Each command's `--help` ends with the example shown "
             "here; the examples run in this order, after the tour above, in `tests/test_docs_run.py`.\n")
    lines: list[str] = [intro]
    for path, cmd in iter_commands():
        params = [p for p in cmd.params if p.name != "help"]
        args = [p.name.upper() for p in params if p.param_type_name == "argument"]
        lines.append(f"### `{' '.join(['mixopt', *path, *args])}`\n")
        lines.append(((cmd.help or "").strip().splitlines() or [""])[0] + "\n")
        for p in params:
            if p.param_type_name == "argument":
                lines.append(f"- `{p.name.upper()}`: {getattr(p, 'help', '') or ''}")
            else:
                label = f"{', '.join(p.opts)} {p.metavar}".strip() if p.metavar else ", ".join(p.opts)
                lines.append(f"- `{label}`: {getattr(p, 'help', '') or ''}")
        example = example_of(cmd)
        if example:
            lines.append(f"\nExample: `{example}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def readme_examples(text: str) -> list[str]:
    """The example command lines of the CLI reference block in a README's text, in order."""
    section = text.split(START)[1].split(END)[0]
    return [line[len("Example: `"):-1] for line in section.splitlines() if line.startswith("Example: `") and line.endswith("`")]


def update_readme(path: str | Path) -> None:
    """Replace the README's generated CLI reference section in place."""
    path = Path(path)
    text = path.read_text()
    head, rest = text.split(START)
    path.write_text(head + START + cli_reference() + END + rest.split(END)[1])


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["--write"]:
        update_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(cli_reference(), end="")
