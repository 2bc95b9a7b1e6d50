"""The CLI's face: `--version`, one example in every command's `--help`, and no Python type labels."""

from __future__ import annotations

import re
import shlex

import pytest

import mixopt
from mixopt.cli.main import EXAMPLES, build_command, example_of, run
from mixopt.cli.reference import cli_reference, iter_commands

COMMANDS = [path for path, _ in iter_commands()]
TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|text|list\[[^\]]*\]|[a-z ]+ range)>", re.IGNORECASE)


def _flat(text: str) -> str:
    """Help text without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_version_flag(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mixopt {mixopt.__version__}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_help_ends_with_a_runnable_looking_example_and_no_type_labels(path, capsys):
    assert run([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert not TYPE_LABEL.search(text), f"`mixopt {' '.join(path)} --help` shows a type label: {TYPE_LABEL.search(text).group(0)}"
    flat = _flat(text)
    m = re.search(r"Example: (mixopt .*)$", flat)
    assert m, f"`mixopt {' '.join(path)} --help` has no 'Example: mixopt ...' line"
    assert m.group(1).startswith("mixopt " + " ".join(path) + " ")


@pytest.mark.parametrize("path,cmd", list(iter_commands()), ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_each_example_parses_against_its_command(path, cmd):
    """Options and arguments of the example exist and take the values given (nothing is run)."""
    example = example_of(cmd)
    assert example, f"mixopt {' '.join(path)} has no example"
    argv = shlex.split(example)[1 + len(path):]
    ctx = cmd.make_context(" ".join(["mixopt", *path]), argv, resilient_parsing=False)
    assert ctx.params  # parsed into values


def test_flags_have_no_label_and_pairs_name_their_parts(capsys):
    assert run(["score", "--help"]) == 0
    flat = _flat(capsys.readouterr().out)
    assert "--json Print" in flat and "--help Show" in flat  # flags: no value label
    assert "--pool NAME=PATH" in flat and "--paths DOMAIN=PATH" in flat


def test_examples_table_names_only_real_commands():
    assert set(EXAMPLES) <= {" ".join(p) for p in COMMANDS}, set(EXAMPLES) - {" ".join(p) for p in COMMANDS}


def test_reference_carries_examples_and_plain_labels():
    ref = cli_reference()
    assert ref.count("\nExample: `mixopt ") == len(COMMANDS)
    assert "- `--store PATH`:" in ref and not TYPE_LABEL.search(ref)


def test_build_command_is_repeatable():
    """Building twice (tests call `run` many times) keeps one help option and one example per command."""
    first, second = build_command(), build_command()
    for (_, a), (_, b) in zip(iter_commands(first), iter_commands(second)):
        assert example_of(a) == example_of(b)
        assert [p.name for p in a.params] == [p.name for p in b.params]
