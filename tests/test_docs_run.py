"""Docs that run: every command of the README's five-minute tour, then every example of the CLI reference.

They run in order, in a temporary folder that holds the repo's ``configs/`` and the
few files a user would bring (``crawl.jsonl``, ``books.parquet``, ``val.jsonl``,
``mixtures.csv``, ``metrics.csv``, made here from the embedded corpus). Each is
run in-process through ``mixopt.cli.main.run`` and must exit 0. A stale README
(a renamed flag, a missing file, a placeholder such as ``...``) fails here.
Only ``corpus build``, which needs the network, is parsed instead of run.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import time
from pathlib import Path

import pytest

from mixopt.cli.main import build_command, run
from mixopt.cli.reference import readme_examples

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOUR_HEADING = "## A five-minute tour"
NOT_RUN = {("corpus", "build"): "needs network access to fetch source packages"}
SHELL_SYNTAX = ("|", ">", "<", "&&", ";", "$(", "`", "...")


def tour_commands(text: str) -> list[str]:
    """The commands of the first ```bash block under the tour heading, continuation lines joined, comments dropped."""
    assert TOUR_HEADING in text, f"README.md has no '{TOUR_HEADING}' section"
    block = text.split(TOUR_HEADING, 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    commands, current = [], ""
    for line in block.splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        words = shlex.split(current, comments=True)
        if words:
            commands.append(shlex.join(words))
        current = ""
    return commands


def _lines(path: Path) -> list[str]:
    import gzip

    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["text"] for line in fh]


def bring_user_files(root: Path) -> None:
    """The inputs the tour and the examples name but mixopt does not make: small real files from the embedded corpus."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mixopt.data.embedded import embedded_domains, embedded_path

    code, prose, legal = (_lines(embedded_path(d)) for d in ("code", "prose", "legal"))
    (root / "crawl.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in code[:20] + legal[:20]))
    pq.write_table(pa.table({"text": prose[:30]}), root / "books.parquet")
    (root / "val.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in code[-20:]))
    domains = embedded_domains()
    with open(root / "mixtures.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", *domains])
        for i in range(4):
            weights = [1.0 if j == i else 0.0 for j in range(len(domains))] if i < 3 else [1 / len(domains)] * len(domains)
            w.writerow([i, *weights])
    with open(root / "metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "val/code", "val/prose"])
        for i in range(4):
            w.writerow([i, 3.0 + 0.1 * i, 3.2 - 0.05 * i])


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(REPO / "configs", work / "configs", symlinks=False)  # real files (copies of mixopt/configs)
    bring_user_files(work)
    return work


def run_commands(commands: list[str], where: str, capsys) -> list[tuple[str, float]]:
    """Run each command in the current folder; fail with the command, its exit code and stderr."""
    root = build_command()
    timings = []
    for line in commands:
        assert not any(tok in line for tok in SHELL_SYNTAX), f"{where}: `{line}` is not a single runnable command"
        argv = shlex.split(line)
        assert argv[0] == "mixopt", f"{where}: `{line}` does not start with mixopt"
        path = tuple(w for w in argv[1:3] if not w.startswith("-"))
        if path in NOT_RUN:
            cmd = root.commands[path[0]].commands[path[1]]
            cmd.make_context(" ".join(argv[:3]), argv[3:])  # the flags must still exist
            continue
        t0 = time.perf_counter()
        rc = run(argv[1:])
        out = capsys.readouterr()
        timings.append((line, time.perf_counter() - t0))
        assert rc == 0, f"{where}: `{line}` exited {rc}:\n{out.err[-3000:]}\n(time so far: {_slowest(timings)})"
        assert "Traceback" not in out.err, f"{where}: `{line}` printed a traceback:\n{out.err[-3000:]}"
    return timings


def test_readme_tour_and_cli_examples_run_on_the_tiny_config(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    tour, examples = tour_commands(text), readme_examples(text)
    assert len(tour) >= 8 and any(c.startswith("mixopt report") for c in tour)
    assert len(examples) >= 15
    monkeypatch.chdir(_workdir(tmp_path))
    monkeypatch.setenv("COLUMNS", "120")
    timings = run_commands(tour, "README tour", capsys)
    assert Path("plan.yaml").is_file() and Path("report/index.html").is_file() and Path("model.pkl").is_file()
    timings += run_commands(examples, "CLI reference example", capsys)
    for line in tour + examples:
        argv = shlex.split(line)
        if "--out" in argv and tuple(argv[1:3]) not in NOT_RUN:
            out = Path(argv[argv.index("--out") + 1])
            assert out.exists() or any(out.parent.glob(out.stem + ".*")), f"`{line}` did not write {out}"
    print("docs commands:", _slowest(timings))


def _slowest(timings: list[tuple[str, float]]) -> str:
    total = sum(s for _, s in timings)
    top = sorted(timings, key=lambda t: -t[1])[:4]
    return f"{total:.0f} s in all; slowest " + "; ".join(f"{s:.0f} s `{c[:60]}`" for c, s in top)


def test_tour_parser_joins_continuations_and_drops_comments():
    text = f"{TOUR_HEADING}\n\n```bash\nmixopt a --x 1   # note\nmixopt b \\\n  --y 2 \\\n  --z 3  # end\n\n```\n"
    assert tour_commands(text) == ["mixopt a --x 1", "mixopt b --y 2 --z 3"]


@pytest.mark.parametrize("line", ["mixopt export plan.yaml --paths code=/data/code ... --out o/", "mixopt fit > x"])
def test_placeholders_and_shell_syntax_are_rejected(line, capsys):
    with pytest.raises(AssertionError, match="not a single runnable command"):
        run_commands([line], "doc", capsys)
