"""Latency and throughput of the prediction API of a worker with a trained online model.

    python benchmarks/predict_api.py [--learner NAME] [--requests N] [--batches B]
                                     [--batch-size S] [--keys K] [--out FILE]

A worker (``python -m streamlearn worker``, a subprocess with its own topics) runs with
``model_enabled`` and the learner ``--learner`` (the ``model_learner`` setting unless
given). The benchmark trains it: River's Phishing data set (1,250 events, 9 values, the
label inline) goes to the events topic, ``--keys`` keys round-robin, one event per second
of event time, and the benchmark waits until ``GET /api/v1/models/{name}/metrics`` says
every label was learned. Then, over loopback HTTP, one request at a time:

1. **single, cache off** (``model_predict_cache_s=0``): ``--requests`` different
   ``POST /api/v1/predict`` (Phishing rows again, each for its own key). Client-side
   p50/p95/p99, and the worker's own time (features + model, ``latency_us`` of the
   answer). The answers' accuracy against the rows' labels shows the model is trained.
2. **single, cache on** (a second worker, trained the same way, with the default
   ``model_predict_cache_s``): ``--requests`` identical requests: the TTL cache answers
   all but about one a second.
3. **batch** (the first worker): ``--batches`` ``POST /api/v1/predict/batch`` of
   ``--batch-size`` events each: events per second and latency per batch.

The first ``--warmup`` requests of each series are not counted. The aim: p99 of a single
request under 10 ms. The broker: ``STREAMLEARN_BROKER_URL``, else a private one
(``benchmarks/harness.py``). Results: a summary on stdout, JSON in ``benchmarks/results/``
(or ``--out``).
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
    Broker,
    Workers,
    benchmark_broker,
    configure_logging,
    delete_run_topics,
    log,
    machine_info,
    new_run_id,
    phase_settings,
    produce_all,
    raise_on_termination,
    summarize,
    utc_stamp,
    write_results,
)

from streamlearn.config import Settings, load_settings

START_MS = 1_767_600_000_000  # 2026-01-05 08:00 UTC, a Monday
TARGET_P99_MS = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", help="model_learner (default: the setting's default)")
    parser.add_argument("--requests", type=int, default=2_000, help="single requests a series")
    parser.add_argument("--warmup", type=int, default=100, help="requests not counted")
    parser.add_argument("--batches", type=int, default=200, help="batch requests")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch")
    parser.add_argument("--keys", type=int, default=16, help="event keys")
    parser.add_argument("--out", type=Path, help="results JSON (default: benchmarks/results/)")
    opts = parser.parse_args(argv)
    if min(opts.requests, opts.batches, opts.batch_size, opts.keys) < 1 or opts.warmup < 0:
        parser.error("--requests, --batches, --batch-size and --keys must be positive")
    if opts.batch_size > 1_000:
        parser.error("--batch-size is at most 1000 (the API's limit)")
    return opts


def phishing() -> list[tuple[dict[str, float], bool]]:
    from river import datasets

    return [({k: float(v) for k, v in x.items()}, bool(y)) for x, y in datasets.Phishing()]


def key_name(index: int, keys: int) -> str:
    return f"site-{index % keys:03d}"


def training_events(
    rows: list[tuple[dict[str, float], bool]], keys: int
) -> list[tuple[bytes, bytes]]:
    """Every row as a labelled event: keys round-robin, one event a second."""
    out = []
    for i, (values, label) in enumerate(rows):
        key = key_name(i, keys)
        doc = {"key": key, "ts": START_MS + i * 1000, "id": f"t{i}", "values": values}
        out.append((key.encode(), orjson.dumps({**doc, "label": label})))
    return out


def predict_body(rows: list[tuple[dict[str, float], bool]], index: int, keys: int) -> dict:
    """A request for row ``index`` (cycling), for the key that row went to in training."""
    values, _ = rows[index % len(rows)]
    ts = START_MS + (len(rows) + index) * 1000
    return {"key": key_name(index, keys), "values": values, "ts": ts}


async def wait_learned(session: aiohttp.ClientSession, base: str, name: str, n: int) -> None:
    deadline = time.monotonic() + 300
    learned = 0
    while time.monotonic() < deadline:
        async with session.get(f"{base}/api/v1/models/{name}/metrics") as reply:
            if reply.status == 200:
                learned = (await reply.json())["learned"]
                if learned >= n:
                    return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the worker learned {learned} of {n} labels within 300 s")


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, Any]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        payload = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {payload[:300]!r}")
    return (time.perf_counter() - started) * 1000, orjson.loads(payload)


async def single_series(
    session: aiohttp.ClientSession, base: str, bodies: list[bytes], warmup: int
) -> tuple[list[float], list[Any]]:
    """Post each body in turn; client latencies (ms) and answers after the warm-up."""
    url = f"{base}/api/v1/predict"
    latencies, answers = [], []
    for i, body in enumerate(bodies):
        ms, answer = await post(session, url, body)
        if i >= warmup:
            latencies.append(ms)
            answers.append(answer)
    return latencies, answers


async def trained_worker(
    broker: Broker,
    workers: Workers,
    settings: Settings,
    name: str,
    records: list[tuple[bytes, bytes]],
    session: aiohttp.ClientSession,
) -> str:
    """Start a worker, feed it the labelled events, wait until it learned them all."""
    worker = workers.new(settings, name)
    await worker.wait_ready(120)
    await produce_all(broker.bootstrap_servers, settings.topic("events"), records)
    base = f"http://127.0.0.1:{settings.web_port}"
    started = time.monotonic()
    await wait_learned(session, base, settings.model_learner, len(records))
    log(f"{name}: {len(records)} labels learned in {time.monotonic() - started:.1f} s")
    return base


async def model_metrics(session: aiohttp.ClientSession, base: str, name: str) -> dict[str, Any]:
    """``GET /api/v1/models/{name}/metrics`` of the worker."""
    async with session.get(f"{base}/api/v1/models/{name}/metrics") as reply:
        return dict(await reply.json())


async def run(opts: argparse.Namespace, broker: Broker, tmp: Path, workers: Workers) -> dict:
    run_prefix = f"bench-{new_run_id()}"
    learner = opts.learner or load_settings().model_learner
    common: dict[str, Any] = {
        "model_enabled": True,
        "model_learner": learner,
        "model_delayed_labels": False,  # every label is inline
        "topic_partitions": 4,
    }
    rows = phishing()
    records = training_events(rows, opts.keys)
    n = opts.warmup + opts.requests
    bodies = [orjson.dumps(predict_body(rows, i, opts.keys)) for i in range(n)]
    labels = [rows[i % len(rows)][1] for i in range(n)][opts.warmup :]
    results: dict[str, Any] = {
        "learner": learner,
        "training_events": len(records),
        "keys": opts.keys,
        "requests": opts.requests,
        "warmup": opts.warmup,
        "target_p99_ms": TARGET_P99_MS,
    }
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # 1. single requests, cache off; 3. batches (same worker)
            settings = phase_settings(
                broker, run_prefix, "nocache", tmp, model_predict_cache_s=0.0, **common
            )
            base = await trained_worker(broker, workers, settings, "nocache", records, session)
            trained = await model_metrics(session, base, learner)
            results["model"] = {k: trained[k] for k in ("learned", "predicted", "pending")}
            latencies, answers = await single_series(session, base, bodies, opts.warmup)
            results["examples"] = {
                "predict_request": orjson.loads(bodies[opts.warmup]),
                "predict_answer": answers[0],
                "metrics": trained,
            }
            right = sum(a["prediction"] == y for a, y in zip(answers, labels, strict=True))
            results["single_nocache_ms"] = summarize(latencies)
            results["single_nocache_server_us"] = summarize(a["latency_us"] for a in answers)
            results["single_nocache_accuracy"] = round(right / len(answers), 4)
            log(f"single, cache off: p99 {results['single_nocache_ms']['p99']:.2f} ms")

            url = f"{base}/api/v1/predict/batch"
            size = opts.batch_size
            batch_latencies = []
            started = 0.0
            for b in range(opts.warmup // 10 + opts.batches):
                if b == opts.warmup // 10:
                    started = time.perf_counter()
                first = b * size
                events = [predict_body(rows, first + i, opts.keys) for i in range(size)]
                ms, answer = await post(session, url, orjson.dumps({"events": events}))
                if len(answer["predictions"]) != size:
                    raise RuntimeError(f"batch of {size}: {len(answer['predictions'])} answers")
                if b >= opts.warmup // 10:
                    batch_latencies.append(ms)
            seconds = time.perf_counter() - started
            results["batch"] = {
                "batch_size": size,
                "batches": opts.batches,
                "events_per_s": round(opts.batches * size / seconds),
                "latency_ms": summarize(batch_latencies),
            }
            log(f"batch: {results['batch']['events_per_s']:,} events/s")
            workers.stop_all()

            # 2. identical requests, cache on
            settings = phase_settings(broker, run_prefix, "cache", tmp, **common)
            results["cache_s"] = settings.model_predict_cache_s
            base = await trained_worker(broker, workers, settings, "cache", records, session)
            same = [bodies[0]] * n
            latencies, _ = await single_series(session, base, same, opts.warmup)
            results["single_cached_ms"] = summarize(latencies)
            log(f"single, identical, cache on: p99 {results['single_cached_ms']['p99']:.2f} ms")
        return results
    finally:
        workers.stop_all()
        await delete_run_topics(broker.bootstrap_servers, run_prefix)


def report(results: dict[str, Any]) -> str:
    def line(label: str, s: dict[str, float], unit: str = "ms") -> str:
        return (
            f"  {label:<44} p50 {s['p50']:.2f} {unit}  p95 {s['p95']:.2f} {unit}  "
            f"p99 {s['p99']:.2f} {unit}"
        )

    batch = results["batch"]
    verdict = "met" if results["single_nocache_ms"]["p99"] < TARGET_P99_MS else "NOT met"
    return "\n".join(
        [
            f"\npredict API, learner {results['learner']} trained on "
            f"{results['training_events']:,} labelled events, {results['keys']} keys:",
            line("POST /api/v1/predict, cache off", results["single_nocache_ms"]),
            line(
                "  of which in the worker (features+model)",
                results["single_nocache_server_us"],
                "µs",
            ),
            line(
                f"POST /api/v1/predict, identical, cache {results['cache_s']:g} s",
                results["single_cached_ms"],
            ),
            line(f"POST /api/v1/predict/batch ({batch['batch_size']} events)", batch["latency_ms"]),
            f"  batch throughput: {batch['events_per_s']:,} events/s",
            f"  accuracy of the served predictions: {results['single_nocache_accuracy']:.4f}",
            f"  aim p99 < {TARGET_P99_MS:g} ms (single, cache off): {verdict}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    configure_logging()
    raise_on_termination()
    with tempfile.TemporaryDirectory(prefix="streamlearn-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        workers = Workers(tmp / "logs")
        with benchmark_broker(tmp) as broker:
            results = asyncio.run(run(opts, broker, tmp, workers))
    print(report(results))
    data = {"results": results, "machine": machine_info()}
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        path = opts.out
    else:
        path = write_results("predict-api", utc_stamp(), data)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    log(f"results written to {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
