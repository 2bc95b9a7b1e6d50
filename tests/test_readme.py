"""The README's commands and CLI reference stay true."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_cli_reference_in_readme_is_current():
    from mixopt.cli.reference import cli_reference

    text = README.read_text()
    section = text.split("<!-- cli-reference:start -->\n")[1].split("<!-- cli-reference:end -->")[0]
    assert section == cli_reference(), "README CLI reference is stale: regenerate it with `python -m mixopt.cli.reference --write README.md`"


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    demo = text.split("<!-- ci:demo -->")[1].split("```bash\n")[1].split("\n```")[0]
    test = text.split("<!-- ci:test -->")[1].split("```bash\n")[1].split("\n```")[0]
    assert "mixopt demo" in demo and text.index("<!-- ci:demo -->") < text.index("<!-- ci:test -->") < 1200
    assert test.endswith("pytest")
    ci = (README.parent / ".ci" / "run").read_text()
    assert "ci:test" in ci  # .ci/run executes the block under <!-- ci:test --> verbatim
