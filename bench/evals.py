"""Eval runner throughput: cases per second at concurrency 16 against a local
OpenAI-compatible server that answers after 50 ms, through Keel, vs the ideal
(concurrency / latency = 320 cases/s).

    python -m bench.evals                       # 960 cases, both modes
    python -m bench.evals --cases 2000 --latency-ms 50 --concurrency 16

Two ways the harness reaches the gateway:

- ``embedded``: ``keel eval run`` without ``--gateway``: the gateway runs in a thread of
  the eval process (one process, one GIL for the runner and the gateway);
- ``remote``: ``keel serve`` in its own process, the runner in this one.

Each mode runs the suite twice: the first run calls the model for every case; the
second is served from the eval cache (same cases, prompt, model, parameters) and costs
nothing. Only the run itself is timed (not start-up). Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from bench.gateway import MODEL, REPO_ROOT, Child, child_env, free_port, start_upstream, write_keel_config
from keel.core import load_settings
from keel.evals import Runner, RunOptions, load_suite, prepare
from keel.server import embedded_gateway
from keel.store import create_store_engine, upgrade


def write_suite(workdir: Path, cases: int, concurrency: int) -> Path:
    dataset = workdir / "cases.jsonl"
    with dataset.open("w") as handle:
        for i in range(cases):
            handle.write(
                json.dumps({"id": f"c{i}", "question": f"Question number {i}?", "expected": "gateway"}) + "\n"
            )
    suite = workdir / "suite.yaml"
    suite.write_text(
        f"""\
name: bench
dataset: cases.jsonl
prompts:
  - name: plain
    messages: [{{role: user, content: "{{{{ question }}}}"}}]
models: [{MODEL}]
concurrency: {concurrency}
scorers:
  - contains: {{}}
  - exact_match: {{}}
"""
    )
    return suite


async def timed_run(engine: Engine, base_url: str, suite_path: Path, concurrency: int) -> tuple[float, int]:
    suite = load_suite(suite_path)
    prepared = prepare(suite, None)
    runner = Runner(engine, RunOptions(base_url=base_url, progress=False, concurrency=concurrency))
    started = time.perf_counter()
    results = await runner.run(prepared)
    elapsed = time.perf_counter() - started
    return elapsed, len(results.cells)


def start_keel(workdir: Path, config: Path, port: int) -> Child:
    """``keel serve`` in its own process, once it answers /health/live."""
    log_path = workdir / "keel.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keel", "serve", "--config", str(config), "--log-level", "warning"],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    child = Child("keel", proc, log_path)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1):
                return child
        except OSError:
            time.sleep(0.1)
    child.stop()
    raise RuntimeError(child.log_tail())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=960)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--modes", default="embedded,remote")
    args = parser.parse_args(argv)
    console = Console()
    ideal = args.concurrency / (args.latency_ms / 1000)
    table = Table(
        title=f"eval runner: {args.cases} cases, concurrency {args.concurrency}, {args.latency_ms:g} ms model"
    )
    for column in ("mode", "run", "cases/s", "% of ideal", "seconds"):
        table.add_column(column, justify="right" if column not in ("mode", "run") else "left")
    with tempfile.TemporaryDirectory(prefix="keel-bench-evals-") as tmp:
        workdir = Path(tmp)
        upstream, upstream_port = start_upstream(workdir, "--latency-ms", str(args.latency_ms))
        try:
            for mode in args.modes.split(","):
                run_dir = workdir / mode
                run_dir.mkdir()
                keel_port = free_port()
                config = write_keel_config(run_dir, keel_port, upstream_port, "off")
                suite = write_suite(run_dir, args.cases, args.concurrency)
                settings = load_settings(config)
                engine = create_store_engine(settings.database_url)
                upgrade(engine)
                if mode == "embedded":
                    with embedded_gateway(settings) as (_, base_url):
                        timings = [
                            asyncio.run(timed_run(engine, base_url, suite, args.concurrency))
                            for _ in range(2)
                        ]
                else:
                    keel = start_keel(run_dir, config, keel_port)
                    try:
                        url = f"http://127.0.0.1:{keel_port}"
                        timings = [
                            asyncio.run(timed_run(engine, url, suite, args.concurrency)) for _ in range(2)
                        ]
                    finally:
                        keel.stop()
                engine.dispose()
                for label, (seconds, cells) in zip(("calls", "cached"), timings, strict=True):
                    rate = cells / seconds
                    pct = f"{100 * rate / ideal:.0f}%" if label == "calls" else "-"
                    table.add_row(mode, label, f"{rate:.0f}", pct, f"{seconds:.2f}")
        finally:
            upstream.stop()
    console.print(table)
    console.print(f"ideal: {ideal:.0f} cases/s (concurrency / latency)")


if __name__ == "__main__":
    main()
