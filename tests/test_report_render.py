"""Each report looked at as a person would: headless Chromium renders the HTML file to a PNG,
which must show the plots (their colours, over a large area), not an empty page.

Chromium is the Debian package ``chromium`` (``make install`` installs it); without it this
test fails, saying so, rather than skipping.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_reports import latency_rows, predictions, training

from features.monitoring_config import AlertsConfig
from playerpulse.latency_report import latency_report
from playerpulse.model_report import model_report

PLOT_BLUE = np.array([0x3B, 0x6E, 0xA5])
"""The bars' colour in both reports (histograms, fallback and PSI bars within their thresholds);
nothing else on the page has it."""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is not installed: run `make install` (Debian package chromium)")
    return found


def render(page: str, tmp_path: Path, name: str) -> np.ndarray:
    html, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    html.write_text(page, encoding="utf-8")
    args = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    args += ["--window-size=1200,2600", f"--screenshot={png}", html.as_uri()]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)


def plot_pixels(pixels: np.ndarray) -> int:
    return int((np.abs(pixels - PLOT_BLUE).max(axis=2) < 12).sum())


def test_nothing_but_a_plot_has_the_plot_colour():
    """So the checks below cannot pass on the page's text, tables and styles alone."""
    page = latency_report(latency_rows(), AlertsConfig(), "all time").html()
    text = re.sub(r'<img [^>]*src="data:image/png;base64,[^"]*">', "", page)
    colours = [np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)]) for c in re.findall(r"#([0-9a-f]{6})\b", text)]
    colours += [np.array([int(c[i] * 2, 16) for i in range(3)]) for c in re.findall(r"#([0-9a-f]{3})\b", text)]
    assert colours and all(np.abs(c - PLOT_BLUE).max() >= 12 for c in colours)


def test_the_rendered_latency_report_shows_its_plots(tmp_path):
    pixels = render(latency_report(latency_rows(), AlertsConfig(), "all time").html(), tmp_path, "latency")

    assert pixels.shape[:2] == (2600, 1200)
    assert pixels.std() > 20  # not a blank page
    assert plot_pixels(pixels) > 5_000  # the histograms' bars are on screen


def test_the_rendered_model_report_shows_its_plots(tmp_path):
    within = AlertsConfig(max_fallback_rate=0.5)  # bars below their thresholds are drawn in PLOT_BLUE
    page = model_report("store_offer", predictions(), training(), ["sessions", "views"], within).html()

    pixels = render(page, tmp_path, "model")

    assert pixels.std() > 20
    assert plot_pixels(pixels) > 5_000  # the fallback and PSI bars are on screen
