"""Latency of the time-series query API: 24 h of 1-minute windows of one key.

One key gets an event every ``--every-s`` seconds of event time over 24 hours (1,440
tumbling 1-minute windows, plus the 5-minute hopping ones). When the worker has applied
them all, the benchmark asks ``GET /api/v1/series/{key}?value=x&window=tumbling-1m`` for
the whole 24 h ``--requests`` times, one at a time, and reports p50/p95/p99 (client side,
over loopback HTTP). Also the downsampling endpoint (24 h into 5-minute p95 buckets) and
the other endpoints the dashboard polls: the overview, the alert feed of the key over the
day, the key's running statistics and the model report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    REPO_ROOT,
    Workers,
    benchmark_broker,
    delete_run_topics,
    log,
    machine_info,
    new_run_id,
    phase_settings,
    produce_all,
    summarize,
    utc_stamp,
    write_results,
)

DAY_MS = 86_400_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % DAY_MS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every-s", type=float, default=10.0, help="event spacing (event time)")
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint")
    return parser.parse_args(argv)


def events(every_s: float) -> list[tuple[bytes, bytes]]:
    step = int(every_s * 1000)
    out = []
    for i, ts in enumerate(range(START_MS, START_MS + DAY_MS, step)):
        doc = {"key": "sensor-1", "ts": ts, "id": f"q{i}", "values": {"x": (i % 97) * 0.5}}
        out.append((b"sensor-1", orjson.dumps(doc)))
    return out


async def wait_applied(session: aiohttp.ClientSession, base: str, n: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        async with session.get(f"{base}/api/v1/stats/sensor-1") as reply:
            if reply.status == 200 and (await reply.json())["events"] == n:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError("the worker did not apply every event within 300 s")


async def time_requests(
    session: aiohttp.ClientSession, url: str, requests: int
) -> tuple[dict[str, float], int]:
    latencies = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        async with session.get(url) as reply:
            body = await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{url}: HTTP {reply.status}: {body[:200]!r}")
        latencies.append((time.perf_counter() - started) * 1000)
        size = len(body)
    return summarize(latencies), size


async def run(opts: argparse.Namespace, broker: Any, tmp: Path, workers: Workers) -> dict:
    run_prefix = f"bench-{new_run_id()}"
    settings = phase_settings(
        broker, run_prefix, "query", tmp, window_idle_timeout_s=3600.0, topic_partitions=4
    )
    records = events(opts.every_s)
    try:
        worker = workers.new(settings, "query")
        await worker.wait_ready(120)
        await produce_all(broker.bootstrap_servers, settings.topic("events"), records)
        base = f"http://127.0.0.1:{settings.web_port}"
        results: dict[str, Any] = {"events": len(records), "requests": opts.requests}
        async with aiohttp.ClientSession() as session:
            await wait_applied(session, base, len(records))
            window = f"from={START_MS}&to={START_MS + DAY_MS}"
            series_url = f"{base}/api/v1/series/sensor-1?value=x&window=tumbling-1m&{window}"
            async with session.get(series_url) as reply:
                results["windows_returned"] = len((await reply.json())["windows"])
            results["series_ms"], results["series_bytes"] = await time_requests(
                session, series_url, opts.requests
            )
            aggregate_url = (
                f"{base}/api/v1/series/sensor-1/aggregate?value=x&agg=p95&every=5m&{window}"
            )
            results["aggregate_ms"], results["aggregate_bytes"] = await time_requests(
                session, aggregate_url, opts.requests
            )
            # The dashboard's other data endpoints (its key explorer asks for the series
            # above, with the alerts of the same range for the anomaly markers).
            async with session.get(f"{base}/api/v1/models") as reply:
                model = (await reply.json()).get("model") if reply.status == 200 else None
            dashboard = {
                "overview": f"{base}/api/v1/overview",
                "alerts": f"{base}/api/v1/alerts?type=anomaly&key=sensor-1"
                f"&since={START_MS}&until={START_MS + DAY_MS}&limit=500",
                "stats": f"{base}/api/v1/stats/sensor-1",
            }
            if model:
                dashboard["model_report"] = f"{base}/api/v1/models/{model}/report"
            for name, url in dashboard.items():
                results[f"{name}_ms"], results[f"{name}_bytes"] = await time_requests(
                    session, url, opts.requests
                )
        return results
    finally:
        workers.stop_all()
        await delete_run_topics(broker.bootstrap_servers, run_prefix)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="streamlearn-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        workers = Workers(tmp / "logs")
        with benchmark_broker(tmp) as broker:
            results = asyncio.run(run(opts, broker, tmp, workers))
    series, aggregate = results["series_ms"], results["aggregate_ms"]
    print(
        f"\nquery API, 24 h of 1-minute windows of one key ({results['windows_returned']} "
        f"windows, {results['series_bytes']:,} bytes):\n"
        f"  GET /api/v1/series            p50 {series['p50']:.1f} ms  "
        f"p95 {series['p95']:.1f} ms  p99 {series['p99']:.1f} ms\n"
        f"  GET .../aggregate (5m, p95)   p50 {aggregate['p50']:.1f} ms  "
        f"p95 {aggregate['p95']:.1f} ms  p99 {aggregate['p99']:.1f} ms"
    )
    for name in ("overview", "alerts", "stats", "model_report"):
        if f"{name}_ms" in results:
            t = results[f"{name}_ms"]
            print(
                f"  {name:<29} p50 {t['p50']:.1f} ms  p95 {t['p95']:.1f} ms  "
                f"p99 {t['p99']:.1f} ms  ({results[f'{name}_bytes']:,} bytes)"
            )
    path = write_results("query-api", utc_stamp(), {"results": results, "machine": machine_info()})
    log(f"results written to {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
