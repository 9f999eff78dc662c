"""The small world's report in a real browser: Debian's headless Chromium through Selenium.

The page is opened from disk (``file://``): it must draw with no network. The test fails
(never skips) when Chromium or its driver is missing, naming the install command.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shikong.report.page import CHART, MAP

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "headless Chromium is required for the report's browser test: "
    "apt-get install -y chromium chromium-driver (scripts/setup.sh does it)"
)
#: Map subplots (the routes section has two: OR-Tools and the baseline) and charts.
MAP_SECTIONS = {"hotspots": 1, "zones": 1, "clusters": 1, "routes": 2}
CHART_SECTIONS = ("forecasts", "policy", "evaluation", "quality", "timings")
RENDER_TIMEOUT_S = 90


def _binary(names: tuple[str, ...]) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    browser_bin, driver_bin = _binary(CHROMIUM), _binary(("chromedriver",))
    if browser_bin is None or driver_bin is None:
        pytest.fail(INSTALL_HINT)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser_bin
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        # WebGL without a GPU (the maps are MapLibre canvases): SwiftShader, opted in.
        "--enable-unsafe-swiftshader",
        "--use-angle=swiftshader",
        "--window-size=1400,1000",
        # No network: every name fails to resolve, so the page must draw from the file alone.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


_STATE_JS = """
const out = {maps: {}, charts: {}};
for (const box of document.querySelectorAll('div.sk-map, div.sk-chart')) {
  const gd = box.querySelector('.js-plotly-plot');
  const key = box.dataset.section;
  const kind = box.classList.contains('sk-map') ? 'maps' : 'charts';
  if (!gd || !gd._fullLayout) { out[kind][key] = null; continue; }
  if (box.classList.contains('sk-map')) {
    const subplots = Object.keys(gd._fullLayout).filter(k => /^map\\d*$/.test(k)).sort();
    out.maps[key] = subplots.map(k => {
      const m = gd._fullLayout[k]._subplot.map;
      const canvas = m.getCanvas();
      const drawn = m.loaded() ? m.queryRenderedFeatures()
        .filter(f => f.layer.id.startsWith('plotly-trace-layer')).length : -1;
      return {loaded: m.loaded(), features: drawn, width: canvas.width, height: canvas.height};
    });
  } else {
    out.charts[key] = {
      svg: box.querySelectorAll('svg.main-svg').length,
      marks: box.querySelectorAll(
        '.cartesianlayer .trace path, .cartesianlayer .trace .point, .table .cell-rect').length,
    };
  }
}
return out;
"""


def _wait_for_render(driver) -> dict:
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    state: dict = {}
    while time.monotonic() < deadline:
        state = driver.execute_script(_STATE_JS)
        maps = state["maps"]
        if len(maps) == len(MAP_SECTIONS) and all(
            subs and all(s["loaded"] and s["features"] > 0 for s in subs) for subs in maps.values()
        ):
            return state
        time.sleep(0.5)
    return state


def test_the_report_renders_every_map_and_chart_without_console_errors(
    browser, report, tmp_path: Path
) -> None:
    driver = browser
    page = Path(report["result"].report)
    driver.get(page.resolve().as_uri())
    state = _wait_for_render(driver)

    shots = tmp_path / "screenshots"
    shots.mkdir()
    for box in driver.find_elements("css selector", f"div.{MAP}, div.{CHART}"):
        key = box.get_attribute("data-section")
        driver.execute_script("arguments[0].scrollIntoView();", box)
        time.sleep(0.3)
        box.screenshot(str(shots / f"{key}.png"))

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    fetched = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [u for u in fetched if not u.startswith(("file:", "data:", "blob:"))] == []
    assert {k: len(v or []) for k, v in state["maps"].items()} == MAP_SECTIONS, state
    for key, subplots in state["maps"].items():
        for sub in subplots:
            assert sub["loaded"] and sub["features"] > 0, (key, sub)
            assert sub["width"] > 0 and sub["height"] > 0, (key, sub)
    assert set(state["charts"]) == set(CHART_SECTIONS), state
    for key, chart in state["charts"].items():
        assert chart and chart["svg"] > 0 and chart["marks"] > 0, (key, chart)
    written = sorted(p.name for p in shots.glob("*.png"))
    assert written == sorted(f"{k}.png" for k in (*MAP_SECTIONS, *CHART_SECTIONS))
    assert all((shots / name).stat().st_size > 2000 for name in written)
