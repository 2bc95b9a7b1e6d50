"""Markdown CLI reference generated from the typer app, so the README cannot drift.

`python -m mixopt.cli.reference` prints it, `... --write README.md` updates the README; a test checks the README holds it verbatim.
"""

from __future__ import annotations


def cli_reference() -> str:
    import typer.main

    from .main import _register, app

    _register()
    root = typer.main.get_command(app)
    lines: list[str] = []

    def walk(cmd, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name in subs:  # registration order = pipeline order
                walk(subs[name], path + [name])
            return
        params = [p for p in cmd.params if p.name != "help"]
        usage = " ".join(["mixopt", *path] + [f"{p.name.upper()}" if p.param_type_name == "argument" else "" for p in params]).split()
        lines.append(f"### `{' '.join(usage)}`\n")
        lines.append(((cmd.help or "").strip().splitlines() or [""])[0] + "\n")
        for p in params:
            if p.param_type_name == "argument":
                lines.append(f"- `{p.name.upper()}`: {getattr(p, 'help', '') or ''}")
            else:
                lines.append(f"- `{', '.join(p.opts)}`: {getattr(p, 'help', '') or ''}")
        lines.append("")

    walk(root, [])
    return "\n".join(lines).rstrip() + "\n"


START, END = "<!-- cli-reference:start -->\n", "<!-- cli-reference:end -->"


def update_readme(path: str) -> None:
    """Replace the README's generated CLI reference section in place."""
    from pathlib import Path

    text = Path(path).read_text()
    head, rest = text.split(START)
    Path(path).write_text(head + START + cli_reference() + END + rest.split(END)[1])


if __name__ == "__main__":  # pragma: no cover
    import sys

    if sys.argv[1:2] == ["--write"]:
        update_readme(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(cli_reference(), end="")
