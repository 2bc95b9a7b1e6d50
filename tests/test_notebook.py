"""notebooks/quickstart.ipynb runs top to bottom (offline, tiny config), ends with a valid plan, and is saved with fresh outputs."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"
MARKER = re.compile(r"MIXOPT_QUICKSTART_OK phases=(\d+) weights_sum=([0-9.]+)")


def _kernel_dir(root: Path) -> Path:
    """A `python3` kernelspec that runs *this* interpreter.

    JUPYTER_PATH is searched before the user's and the environment's kernel
    directories, so a `python3` kernel registered elsewhere (e.g. in
    ~/.local/share/jupyter for another Python without mixopt) cannot shadow it.
    """
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (mixopt tests)", "language": "python", "metadata": {"debugger": False},
    }))
    return root


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") in ("execute_result", "display_data"):
                parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


PLANNED = re.compile(r"(\d+) runs planned: (\d+) trained")


def test_committed_notebook_carries_its_outputs():
    """Saved with outputs (readable on GitHub without running it), all cells run in order, no errors."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[notebook]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{NOTEBOOK.name} was not saved after one top-to-bottom run (execution counts {counts}); "
        "rebuild it with `python notebooks/build_quickstart.py`")
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, [f"{e.get('ename')}: {e.get('evalue')}" for e in errors]
    text = _outputs_text(nb)
    assert MARKER.search(text) and PLANNED.search(text), "saved outputs lack the sweep summary or the final marker"
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {}) for c in code for o in c.get("outputs", []))


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[notebook]')")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[notebook]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[notebook]')")

    out = tmp_path / "nb-out"
    run_dir = tmp_path / "cwd"
    run_dir.mkdir()
    # The kernel inherits os.environ: MIXOPT_CACHE (set by conftest), the offline flags, and these.
    monkeypatch.setenv("MIXOPT_NB_OUT", str(out))
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_dir(tmp_path / "jupyter")))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}})
    t0 = time.time()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"quickstart.ipynb failed:\n{str(exc)[-4000:]}")
    elapsed = time.time() - t0

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, [f"{e.get('ename')}: {e.get('evalue')}" for e in errors]
    text = _outputs_text(nb)
    m = MARKER.search(text)
    assert m, f"the last cell's marker line is missing; outputs end with:\n{text[-2000:]}"
    assert int(m.group(1)) >= 1
    assert abs(float(m.group(2)) - 1.0) < 1e-6

    from mixopt.plan import load_plan

    plan = load_plan(out / "plan.yaml")
    for phase in plan.phases:
        assert abs(sum(phase.weights.values()) - 1.0) < 1e-6
    assert (out / "report" / "index.html").is_file()
    assert any((out / "export" / "olmo-core").iterdir()) and any((out / "export" / "hf-datasets").iterdir())
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])), "the CV plot was not displayed"
    # the saved outputs tell the truth about today's tiny config: same runs planned as this fresh run
    fresh = PLANNED.search(text)
    saved = PLANNED.search(_outputs_text(nbformat.read(NOTEBOOK, as_version=4)))
    assert fresh and saved and fresh.group(1) == saved.group(1), (
        f"the saved notebook says {saved.group(1) if saved else '?'} runs planned, a fresh run plans {fresh.group(1) if fresh else '?'}: "
        "rebuild it with `python notebooks/build_quickstart.py`")
    print(f"quickstart.ipynb ran in {elapsed:.1f} s")


def test_saved_notebook_says_its_decision_and_uses_current_fields():
    """review 31: the notebook read ``projected_metric``/``projected_by`` (kept only for code written before
    ``blend_ot_distance``), printed the runs without their labels (which rows are baselines, seed repeats,
    two-phase?), dumped plan.yaml's unrounded floats, and its prose said which baseline the plan kept, a claim a
    rebuild could silently falsify; the propose cell now prints the decision, and its reasons must agree."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[notebook]')")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "projected_metric" not in code and "projected_by" not in code
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "a few hundred documents per domain" not in prose  # code has 80 documents, docs 48
    text = _outputs_text(nb)
    assert re.search(r"^natural\s+0\.\d{3}", text, re.M) and re.search(r"^uniform~seed1\s+0\.\d{3}", text, re.M)
    decision = re.search(r"^decision: (kept the (\w+) baseline|took the search's mixture)$", text, re.M)
    assert decision, "the propose cell's decision line is missing"
    if decision.group(2):
        assert re.search(rf"^ - kept {decision.group(2)}: ", text, re.M), "the decision and the plan's reasons disagree"
