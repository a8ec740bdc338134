"""The dashboard in a real headless Chromium (selenium), on a real worker, while events flow.

A producer thread replays sensor readings into the events topic for the whole test.
Chromium loads ``/dashboard``; the test reads what plotly drew (``gd.data`` of each
chart, through ``execute_script``) rather than trusting the page's own claims:

* the overview's throughput chart has points, and Faust's stats pages the page links
  to answer;
* a key chosen in the key explorer's picker gets its chart of windows;
* after a spike is injected into that key, an anomaly marker appears at the spike's
  value, and its alert shows in the alert feed;
* panels without data (no online model, an empty registry) say so, and no script
  error happened on the way.

Chromium and chromedriver are Debian's (``make test`` installs them with
``scripts/system-deps.sh``). Screenshots go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from streamlearn.config import Settings
from tests.integration.workers import WorkerProcess, http, unique_settings, wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
KEYS = ["sensor-0", "sensor-1", "sensor-2"]
SPIKE_KEY = "sensor-1"
SPIKE = 500.0  # temp is about 20 ± 1 otherwise
WARMUP = 300


class Replay(threading.Thread):
    """Produces readings of ``KEYS`` (event time = now) until stopped; one spike on demand."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.stop = threading.Event()
        self.spike = threading.Event()
        self.spiked = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.error = exc

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, linger_ms=5)
        await producer.start()
        rng = random.Random(7)
        topic = self.settings.topic("events")
        try:
            while not self.stop.is_set():
                now = int(time.time() * 1000)
                for key in KEYS:
                    temp = 20.0 + rng.gauss(0.0, 1.0)
                    if key == SPIKE_KEY and self.spike.is_set() and not self.spiked.is_set():
                        temp = SPIKE
                        self.spiked.set()
                    event = {
                        "key": key,
                        "ts": now,
                        "values": {"temp": temp, "rh": 40 + rng.gauss(0, 2)},
                    }
                    await producer.send(topic, orjson.dumps(event), key=key.encode())
                    self.sent += 1
                await asyncio.sleep(0.03)
            await producer.flush()
        finally:
            await producer.stop()


def browser() -> webdriver.Chrome:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, (
        "chromium and chromedriver are needed: run scripts/system-deps.sh (make test does)"
    )
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))


#: Points plotly holds in a chart's traces (only traces named in ``names``, if given).
COUNT_POINTS = """
const gd = document.getElementById(arguments[0]);
if (!gd || !gd.data) return 0;
const names = arguments[1];
let n = 0;
for (const t of gd.data) {
  if (names && !names.includes(t.name)) continue;
  const xs = t.x || [];
  for (let i = 0; i < xs.length; i++) if (xs[i] != null && (!t.y || t.y[i] != null)) n++;
}
return n;
"""

TRACE_Y = """
const gd = document.getElementById(arguments[0]);
if (!gd || !gd.data) return [];
const t = gd.data.find((t) => t.name === arguments[1]);
return t ? Array.from(t.y || []) : [];
"""

#: The y values of the raw-values trace (its name carries how many events it holds).
RAW_Y = """
const gd = document.getElementById(arguments[0]);
if (!gd || !gd.data) return [];
const t = gd.data.find((t) => (t.name || "").startsWith("raw values"));
return t ? Array.from(t.y || []) : [];
"""


def points(driver: webdriver.Chrome, chart: str, names: list[str] | None = None) -> int:
    return int(driver.execute_script(COUNT_POINTS, chart, names))


def shot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def script_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Uncaught exceptions and console errors of the page's own code."""
    return [
        e
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") in ("javascript", "console-api")
    ]


@pytest.fixture
def running(kafka_broker: Any, tmp_path: Path) -> Iterator[tuple[WorkerProcess, Replay]]:
    settings = unique_settings(
        kafka_broker.bootstrap_servers,
        tmp_path,
        windows=["tumbling:5s"],
        window_lateness_ms=1000,
        window_grace_ms=1000,
        anomaly_warmup_events=WARMUP,
        model_enabled=False,
        drift_enabled=False,
        overview_sample_s=1.0,
        stats_emit_every_events=100_000,
        stats_emit_interval_s=0.0,
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    replay = Replay(settings)
    replay.start()
    try:
        yield worker, replay
    finally:
        replay.stop.set()
        replay.join(30)
        worker.stop()


def test_dashboard_in_a_real_browser_during_a_replay(
    running: tuple[WorkerProcess, Replay],
) -> None:
    worker, replay = running
    base = f"http://127.0.0.1:{worker.web_port}"

    def scored(key: str) -> int:
        status, body = http(worker, "GET", f"/api/v1/anomaly/{key}")
        return body["events"] if status == 200 else 0

    # Past the detector's warm-up (and its calibration's 400 scores) on the spike's key.
    wait_for(lambda: scored(SPIKE_KEY) >= WARMUP + 200, 180, f"{SPIKE_KEY} warmed up")
    assert replay.error is None, replay.error

    driver = browser()
    try:
        driver.get(f"{base}/dashboard")
        # Overview: throughput history drawn by plotly, with points.
        wait_for(lambda: points(driver, "chart-throughput") > 0, 60, "throughput chart points")
        wait_for(
            lambda: (
                driver.find_element(By.ID, "kpi-in-sub").text.endswith("in total")
                and not driver.find_element(By.ID, "kpi-in-sub").text.startswith("0 ")
            ),
            30,
            "events-in KPI",
        )
        # Faust's own stats pages stay reachable, and the page links them.
        for link_id, path in (("link-stats", "/"), ("link-assignment", "/assignment/")):
            href = driver.find_element(By.ID, link_id).get_attribute("href")
            assert href == f"{base}{path}", href
            status, body = http(worker, "GET", path)
            assert status == 200 and isinstance(body, dict), (path, status, body)
        shot(driver, "overview")

        # Key explorer: choose the spike's key in the picker.
        driver.find_element(By.CSS_SELECTOR, '#tabs a[data-view="keys"]').click()
        wait_for(
            lambda: (
                SPIKE_KEY
                in [
                    o.get_attribute("value")
                    for o in Select(driver.find_element(By.ID, "key-select")).options
                ]
            ),
            60,
            "keys in the picker",
        )
        Select(driver.find_element(By.ID, "key-select")).select_by_value(SPIKE_KEY)
        wait_for(
            lambda: (
                "temp"
                in [
                    o.get_attribute("value")
                    for o in Select(driver.find_element(By.ID, "value-select")).options
                ]
            ),
            30,
            "the key's values in the picker",
        )
        Select(driver.find_element(By.ID, "value-select")).select_by_value("temp")
        wait_for(
            lambda: (
                driver.find_element(By.ID, "key-chart-title").text == f"{SPIKE_KEY} · temp"
                and points(driver, "chart-key", ["window mean"]) >= 2
            ),
            60,
            "the chosen key's windows charted",
        )
        assert f"key={SPIKE_KEY}" in driver.current_url
        shot(driver, "key-explorer-before-spike")
        assert SPIKE not in driver.execute_script(TRACE_Y, "chart-key", "anomaly")

        # Inject the spike; the page, refreshing itself, marks it.
        replay.spike.set()
        wait_for(replay.spiked.is_set, 30, "spike produced")
        wait_for(
            lambda: SPIKE in driver.execute_script(TRACE_Y, "chart-key", "anomaly"),
            90,
            "an anomaly marker at the spike's value",
        )
        assert points(driver, "chart-key", ["window mean"]) >= 2
        # The raw readings are drawn too, the spike among them.
        wait_for(
            lambda: SPIKE in driver.execute_script(RAW_Y, "chart-key"),
            30,
            "the spike among the raw values",
        )
        assert len(driver.execute_script(RAW_Y, "chart-key")) > 10
        shot(driver, "key-explorer-anomaly")

        # The alert feed lists it.
        driver.find_element(By.CSS_SELECTOR, '#tabs a[data-view="alerts"]').click()
        driver.find_element(By.ID, "alert-key").send_keys(SPIKE_KEY)
        wait_for(
            lambda: any(
                "500" in row.text and SPIKE_KEY in row.text
                for row in driver.find_elements(By.CSS_SELECTOR, "#alerts-table tr.alert-row")
            ),
            60,
            "the spike's alert in the feed",
        )
        shot(driver, "alerts")

        # Panels without data say what is missing (this worker runs no online model).
        driver.find_element(By.CSS_SELECTOR, '#tabs a[data-view="models"]').click()
        wait_for(
            lambda: "model_enabled = false" in driver.find_element(By.ID, "models-error").text,
            30,
            "the models panel's message",
        )
        assert points(driver, "chart-metric") == 0
        driver.find_element(By.CSS_SELECTOR, '#tabs a[data-view="registry"]').click()
        wait_for(
            lambda: "No models registered yet" in driver.find_element(By.ID, "registry-empty").text,
            30,
            "the registry's empty state",
        )
        assert script_errors(driver) == []
    finally:
        driver.quit()
    assert replay.error is None, replay.error
    assert replay.sent > 0
