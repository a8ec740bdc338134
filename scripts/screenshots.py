#!/usr/bin/env python3
"""Screenshots of the dashboard during ``streamlearn demo``, for docs/dashboard.md.

Runs the demo (broker if needed, a worker, the S&P 500 replay) with a web port, an API
token and a secret key of its own; once most of the data set has streamed, registers a
candidate model for the online model (as a person would, over HTTP with the token) and
puts it in staging, so the Models and Registry panels show a challenger; then headless
Chromium (Debian's ``chromium`` and ``chromium-driver``) takes one screenshot per panel.
The demo is stopped (Ctrl-C) afterwards and cleans up as usual.

    make screenshots                                   # writes docs/img/dashboard-*.png
    .venv/bin/python scripts/screenshots.py --broker 127.0.0.1:9092 --out /tmp/shots
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1440


def get(base: str, path: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(base + path, timeout=timeout) as reply:
        return json.loads(reply.read())


def post(base: str, path: str, body: bytes, token: str, content_type: str) -> Any:
    request = urllib.request.Request(
        base + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"POST {path}: {exc.code} {exc.read().decode(errors='replace')}") from None


def wait(what: str, check: Any, timeout_s: float, demo: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"the demo exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            found = check()
        except (OSError, ValueError, KeyError):
            found = None
        if found:
            return found
        time.sleep(1.0)
    raise SystemExit(f"timed out waiting for {what}; demo output in {log}")


def register_candidate(base: str, token: str, secret_hex: str, model: str) -> int:
    """A River regressor signed with the app's key, registered and put in staging."""
    from river import linear_model, optim, preprocessing

    from streamlearn.models.envelope import seal

    learner = preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(0.005), l2=0.001
    )
    blob = seal(learner, bytes.fromhex(secret_hex), "river")
    query = urllib.parse.urlencode(
        {
            "by": "ana",
            "description": "linear, SGD 0.005, l2 0.001",
            "training_data": "sp500 daily returns, 2013-2018",
            "params": json.dumps({"lr": 0.005, "l2": 0.001}),
        }
    )
    version = post(
        base,
        f"/api/v1/registry/models/{model}/versions?{query}",
        blob,
        token,
        "application/octet-stream",
    )["version"]
    post(
        base,
        f"/api/v1/registry/models/{model}/versions/{version}/promote",
        json.dumps(
            {"to": "staging", "why": "smaller learning rate, try it in shadow", "by": "ana"}
        ).encode(),
        token,
        "application/json",
    )
    return int(version)


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        raise SystemExit("chromium and chromedriver are needed: bash scripts/system-deps.sh")
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={WIDTH},1000",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))


READY = """
const el = document.getElementById(arguments[0]);
return Boolean(el && el.data && el.data.length);
"""


def capture(driver: Any, path: Path, height: int | None = None) -> None:
    """The whole page (or its top ``height`` pixels) as a PNG, ``WIDTH`` pixels wide."""
    chrome = int(driver.execute_script("return window.outerHeight - window.innerHeight"))
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, (height or full) + chrome)
    time.sleep(1.5)  # plotly relayouts on resize
    if height is None:  # the page may have grown with the taller window
        full = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(WIDTH, full + chrome)
        time.sleep(0.5)
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 1000)
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


class Shooter:
    """One browser on the dashboard; ``view`` opens a view and waits for its data."""

    def __init__(self, base: str, out: Path) -> None:
        self.base = base
        self.out = out
        self.driver = browser()

    def view(self, fragment: str, chart: str | None, seconds: float = 4.0) -> Any:
        self.driver.get(f"{self.base}/dashboard#{fragment}")
        if chart:
            deadline = time.monotonic() + 60
            while not self.driver.execute_script(READY, chart):
                if time.monotonic() > deadline:
                    raise SystemExit(f"chart {chart} did not render")
                time.sleep(0.5)
        time.sleep(seconds)  # the view's other panels finish loading
        return self.driver

    def capture(self, name: str, height: int | None = None) -> None:
        capture(self.driver, self.out / name, height)

    def close(self) -> None:
        self.driver.quit()


def while_streaming(shooter: Shooter) -> None:
    """The overview, while the replay is running."""
    shooter.view("overview", "chart-throughput")
    shooter.capture("dashboard-overview.png")


def after_the_replay(shooter: Shooter, token: str) -> None:
    """Key explorer, Models, Alerts and Registry, once every event (and anomaly) is in."""
    from selenium.webdriver.common.by import By

    alerts = get(shooter.base, "/api/v1/alerts?type=anomaly&limit=1000")["alerts"]
    busiest = collections.Counter(a["key"] for a in alerts).most_common(1)
    key = busiest[0][0] if busiest else get(shooter.base, "/api/v1/keys")["keys"][0]
    query = urllib.parse.urlencode({"key": key, "value": "return", "range": "1y"})
    shooter.view(f"keys?{query}", "chart-key", 6)
    shooter.capture("dashboard-keys.png")

    shooter.view("models", "chart-metric")
    shooter.capture("dashboard-models.png")

    driver = shooter.view("alerts", None)
    rows = driver.find_elements(By.CSS_SELECTOR, "#alerts-table tr.alert-row")
    if rows:
        rows[0].click()  # the newest alert's evidence, opened
        time.sleep(1.0)
    shooter.capture("dashboard-alerts.png", 900)

    driver = shooter.view("registry", None)
    shooter.capture("dashboard-registry.png", 520)
    buttons = driver.find_elements(By.CSS_SELECTOR, '#registry-detail button[data-to="production"]')
    if buttons:
        buttons[0].click()
        driver.find_element(By.ID, "action-why").send_keys("beat the champion in shadow")
        driver.find_element(By.ID, "action-token").clear()
        driver.find_element(By.ID, "action-token").send_keys(token)
        time.sleep(0.5)
        shooter.capture("dashboard-promote.png", 520)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument(
        "--broker", help="host:port of a running broker (default: the demo's local one)"
    )
    parser.add_argument(
        "--events",
        type=int,
        default=8_000,
        help="events streamed before the screenshots taken during the replay (of 12,570)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from streamlearn.demo import sp500_events
    from streamlearn.kafka.broker import free_port

    port = free_port()
    token = secrets.token_urlsafe(16)
    secret_hex = secrets.token_hex(32)
    env = dict(os.environ)
    env.update(
        {
            "STREAMLEARN_WEB_PORT": str(port),
            "STREAMLEARN_API_TOKEN": token,
            "STREAMLEARN_SECRET_KEY": secret_hex,
        }
    )
    if args.broker:
        env["STREAMLEARN_BROKER_URL"] = f"kafka://{args.broker}"
    log = Path(tempfile.mkstemp(prefix="streamlearn-screenshots-", suffix=".log")[1])
    base = f"http://127.0.0.1:{port}"
    print(f"starting the demo (output in {log})")
    with log.open("wb") as sink:
        demo = subprocess.Popen(
            # A slower replay than the demo's default 250/s: more overview samples.
            [sys.executable, "-m", "streamlearn", "demo", "--duration", "900", "--rate", "120"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            # Ctrl-C stops the demo cleanly (worker, topics), even from a background shell.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        wait("the worker's web server", lambda: get(base, "/api/v1/health"), 240, demo, log)
        model = wait(
            "the online model", lambda: get(base, "/api/v1/models").get("model"), 120, demo, log
        )
        early = args.events // 5  # the candidate then runs through most of the data set
        wait(
            f"{early:,} events",
            lambda: get(base, "/api/v1/overview")["totals"]["events_in"] >= early,
            600,
            demo,
            log,
        )
        version = register_candidate(base, token, secret_hex, model)
        print(f"registered {model} v{version} (staging)")
        wait(
            f"{args.events:,} events",
            lambda: get(base, "/api/v1/overview")["totals"]["events_in"] >= args.events,
            600,
            demo,
            log,
        )
        print(f"screenshots of {base}/dashboard:")
        shooter = Shooter(base, args.out)
        try:
            while_streaming(shooter)
            total = sum(1 for _ in sp500_events())
            wait(
                f"all {total:,} events",
                lambda: get(base, "/api/v1/overview")["totals"]["events_in"] >= total,
                600,
                demo,
                log,
            )
            time.sleep(10)  # the last windows close, the last alerts arrive
            after_the_replay(shooter, token)
        finally:
            shooter.close()
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(120)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
