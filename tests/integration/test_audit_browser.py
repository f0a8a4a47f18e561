"""The HTML report as headless Chromium renders it: parsed as we meant, pictures loaded, not blank."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.audit.dataset_audit import audit_version
from engine.audit.html_report import render_html
from engine.audit.screenshot import find_chromium, rendered_dom, screenshot
from tests.support.audit_dataset import build_demo_dataset

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="headless Chromium is not installed (apt-get install -y chromium)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    demo = build_demo_dataset(base)
    path = base / "report.html"
    path.write_text(render_html(audit_version(demo.root, sample=3)), encoding="utf-8")
    return path


def test_chromium_parses_the_report_with_escaped_text_and_every_picture(report) -> None:
    dom = rendered_dom(report)
    assert dom.count("<img") == report.read_text().count("<img") >= 8
    assert "<script" not in dom and "OPEN &lt;script&gt;" in dom
    assert dom.count("<mark") == 2 and dom.count('<div class="sample">') == 3


def test_screenshot_shows_content_not_a_blank_page(report, tmp_path) -> None:
    png = screenshot(report, tmp_path / "report.png", 1280, 2000)
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    dark = pixels < 128  # text, table rules and plot bars on a white page
    assert 0.005 < dark.mean() < 0.5
    rows_with_ink = dark.any(axis=1).mean()
    assert rows_with_ink > 0.3  # content spread down the page, not one line at the top
