"""The HTML report opened in a real browser: every figure decodes and the console stays clean.

Uses Debian's ``chromium-headless-shell`` (``apt-get install -y chromium-headless-shell``;
``.ci/run`` installs it when apt is there) driven by ``playwright`` (the ``test``
extra) pointed at that executable, so no browser download is needed. Set
``MIXOPT_CHROMIUM`` to use another Chromium binary. Skipped, with the reason,
where neither is available.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mixopt.report import build_report
from tests.test_report import FRONTIER, _plan, _store

CANDIDATES = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")


def chromium_executable() -> str | None:
    """A Chromium binary: $MIXOPT_CHROMIUM, Debian's headless shell or chromium, else one on PATH."""
    env = os.environ.get("MIXOPT_CHROMIUM")
    for cand in (env, *CANDIDATES, shutil.which("chromium-headless-shell"), shutil.which("chromium")):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


CHROMIUM = chromium_executable()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install Debian's chromium-headless-shell (apt-get install -y chromium-headless-shell) "
           "or set MIXOPT_CHROMIUM to a Chromium binary",
)

IMAGES_JS = "els => els.map(e => [e.getAttribute('data-file') || e.alt, e.complete, e.naturalWidth, e.naturalHeight])"


def _open(page_path: Path):
    """[(name, complete, naturalWidth, naturalHeight)] of every <img>, and the console errors, as Chromium renders the page."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", IMAGES_JS)
        finally:
            browser.close()
    return images, errors


def test_report_renders_in_chromium_with_every_image_decoded(tmp_path):
    plan = _plan(provenance={"cv": {"y_true": [3.1, 3.0, 3.3, 2.9, 3.2], "y_pred": [3.05, 3.02, 3.25, 2.95, 3.3]},
                             "agreement": {"surrogate": [3.0, 3.1, 3.2, 2.9], "projector": [3.05, 3.0, 3.3, 2.95]}})
    index = build_report(tmp_path / "out", store=_store(tmp_path / "store", repeats=2), plan=plan, frontier=FRONTIER)
    # the page alone, away from its PNG files: it must still show every figure
    alone = tmp_path / "alone" / "index.html"
    alone.parent.mkdir()
    shutil.copy(index, alone)
    for page_path in (index, alone):
        images, errors = _open(page_path)
        assert len(images) == 7, images
        broken = [name for name, complete, w, h in images if not (complete and w > 0 and h > 0)]
        assert not broken, f"{page_path}: images that did not decode: {broken}"
        assert not errors, f"{page_path}: console errors: {errors}"


LAYOUT_JS = """() => ({
  scrollWidth: document.documentElement.scrollWidth,
  firstHeading: document.querySelector('h2').textContent,
  planTop: document.querySelector('#plan') ? document.querySelector('#plan').getBoundingClientRect().top : -1,
  firstFigureTop: document.querySelector('figure').getBoundingClientRect().top,
})"""


def _layout(page_path: Path, width: int):
    """The page's layout at a viewport ``width`` and every URL it asked for (the page must work offline)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.on("request", lambda req: requests.append(req.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            layout = page.evaluate(LAYOUT_JS)
        finally:
            browser.close()
    return layout, requests


def test_the_plan_comes_first_and_a_phone_needs_no_sideways_scroll(tmp_path):
    """review 31: at 390 px (a phone) the summary's long run id and the tables pushed the page to 416 px wide; the
    plan's answer now opens the page, above every figure, and the page asks for nothing but itself."""
    from tests.test_report import _verify_body

    store = _store(tmp_path / "store", repeats=2)
    plan = _plan(budget_tokens=4e6, predicted={"metric": "mean:all-domains", "value": 3.02, "std": 0.03,
                                               "by": {"surrogate": {"value": 3.02, "std": 0.03, "scale": "target"}}})
    index = build_report(tmp_path / "out", store=store, plan=plan, frontier=FRONTIER, verification=_verify_body())
    for width in (390, 1366):
        layout, requests = _layout(index, width)
        assert layout["scrollWidth"] <= width, f"at {width} px the page is {layout['scrollWidth']} px wide"
        assert layout["firstHeading"] == "The plan" and 0 <= layout["planTop"] < layout["firstFigureTop"], layout
        assert all(u.startswith(("file:", "data:")) for u in requests), f"the page fetched {requests}"


def test_a_broken_image_is_caught(tmp_path):
    """The check can fail: a PNG that does not decode gives naturalWidth 0."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="bad" src="data:image/png;base64,iVBORw0KGgoAAAA"></body></html>')
    images, _ = _open(page)
    assert images and images[0][2] == 0
