#!/usr/bin/env python3
"""Benchmark the API as deployed: one uvicorn worker, a real PostgreSQL 15 (fsync on), wrk as the load.

Starts a throw-away PostgreSQL server (the same helper the tests use), seeds and indexes through the
command line, starts `python -m medical_notes serve --workers 1`, then runs
`wrk -t2 -c32 -d10s --latency` against GET /health, GET /documents/{id}, POST /documents and offline
POST /answer_question, and prints requests/s and p50/p99 latency per endpoint plus the index build time.
Then the structured extraction: one request at a time, every note a different text (so never a cached
result), POST /extract_structured and POST /to_fhir over the shipped and dev-split notes, p50/p95/max.

Usage: .venv/bin/python scripts/bench_api.py [--duration 10s] [--connections 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "app"))

from postgres_server import PostgresServer, free_port  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"

POST_DOCUMENT = {
    "title": "Benchmark follow-up visit",
    "content": (
        "## Subjective\nFollow-up for hypertension; no chest pain.\n## Objective\nBP 138/86 mmHg, "
        "HR 72.\n## Assessment\nHypertension, not at goal.\n## Plan\nIncrease lisinopril to 20 mg daily."
    ),
    "doc_type": "soap_note",
    "metadata": {"specialty": "internal medicine"},
}
EXTRACTION_NOTES = sorted((REPO_ROOT / "app" / "data" / "soap_notes").glob("*.md")) + sorted(
    (REPO_ROOT / "tests" / "extraction" / "corpus" / "dev").glob("*.md")
)
QUESTION = {"question": "What HbA1c target is recommended for most adults with type 2 diabetes?", "top_k": 5}


def post_script(directory: Path, name: str, body: dict) -> Path:
    script = directory / f"{name}.lua"
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = "{payload}"\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def run_cli(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "medical_notes", *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"medical_notes {' '.join(args)} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def wait_healthy(url: str, server: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API server exited during start-up:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310 - local URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not become healthy")


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, args: argparse.Namespace, script: Path | None = None) -> dict:
    command = [WRK, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latencies = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests_per_second": requests_per_second,
        "p50_ms": _milliseconds(latencies["50"]),
        "p99_ms": _milliseconds(latencies["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - local URL
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - local URL
        return json.load(response)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))
    return {
        "p50_ms": ordered[len(ordered) // 2],
        "p95_ms": ordered[rank],
        "max_ms": ordered[-1],
        "n": len(ordered),
    }


def bench_extraction(base_url: str, rounds: int) -> dict[str, dict[str, float]]:
    """Sequential requests (one worker serves one note at a time); each text is new, so nothing is cached."""
    notes = [path.read_text() for path in EXTRACTION_NOTES]
    timings: dict[str, list[float]] = {
        "POST /extract_structured": [],
        "  same text again (cached)": [],
        "POST /to_fhir": [],
    }
    for round_number in range(rounds):
        for index, note in enumerate(notes):
            text = f"{note}\n(benchmark copy {round_number}.{index})\n"
            started = time.perf_counter()
            result = post_json(f"{base_url}/extract_structured", {"text": text})
            timings["POST /extract_structured"].append((time.perf_counter() - started) * 1000)
            assert result["cached"] is False
            started = time.perf_counter()
            post_json(f"{base_url}/extract_structured", {"text": text})
            timings["  same text again (cached)"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            bundle = post_json(f"{base_url}/to_fhir", {"text": text + "fhir"})
            timings["POST /to_fhir"].append((time.perf_counter() - started) * 1000)
            assert bundle["validation"]["valid"], bundle["validation"]["errors"]
    return {name: percentiles(samples) for name, samples in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--log-level", default="info", help="LOG_LEVEL of the server (request lines are info)"
    )
    parser.add_argument(
        "--extraction-rounds", type=int, default=3, help="passes over the notes for the extraction section"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    work_dir = Path(tempfile.mkdtemp(prefix="medical-notes-bench-"))
    server: subprocess.Popen | None = None
    try:
        with PostgresServer(durable=True) as postgres:
            database_url = postgres.create_database("medical_notes")
            port = free_port()
            # The benchmark's own settings, not whatever provider, token or embedding the shell exports
            inherited = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("LLM_", "EMBEDDING_", "API_"))
            }
            env = {
                **inherited,
                "PYTHONPATH": str(REPO_ROOT / "app"),
                "DATABASE_URL": database_url,
                "FAISS_INDEX_DIR": str(work_dir / "faiss_db"),
                "LLM_PROVIDER": "offline",
                "EMBEDDING_PROVIDER": "local",
                "LOG_LEVEL": args.log_level,
            }
            seeded = run_cli(env, "seed")
            started = time.monotonic()
            index = run_cli(env, "index", "--force")
            index_wall = time.monotonic() - started

            log_path = work_dir / "server.log"
            with log_path.open("wb") as log_file:
                server = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "medical_notes",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    env={**env, "API_WORKERS": "1"},
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
                base_url = f"http://127.0.0.1:{port}"
                wait_healthy(base_url, server, log_path)

                request = urllib.request.Request(  # noqa: S310 - local URL
                    f"{base_url}/documents",
                    data=json.dumps(POST_DOCUMENT).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request) as response:  # noqa: S310 - local URL
                    document_id = json.load(response)["id"]

                results = {
                    "GET /health": run_wrk(f"{base_url}/health", args),
                    "GET /documents/{id}": run_wrk(f"{base_url}/documents/{document_id}", args),
                    "POST /documents": run_wrk(
                        f"{base_url}/documents", args, post_script(work_dir, "post_document", POST_DOCUMENT)
                    ),
                    "POST /answer_question": run_wrk(
                        f"{base_url}/answer_question", args, post_script(work_dir, "question", QUESTION)
                    ),
                }
                extraction = bench_extraction(base_url, args.extraction_rounds)
                server.terminate()
                server.wait(timeout=15)
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        shutil.rmtree(work_dir, ignore_errors=True)

    print(f"seed: {json.dumps(seeded)}")
    print(
        f"index build (shipped guidelines, --force): {index['seconds']:.3f} s in the builder, "
        f"{index_wall:.2f} s for the whole command ({index['chunks']} chunks, {index['documents']} documents)"
    )
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}, one uvicorn worker, "
        f"LOG_LEVEL={args.log_level}, PostgreSQL 15 with fsync on; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} CPUs; other work on the machine skews the numbers)"
    )
    print(f"{'endpoint':<24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for endpoint, result in results.items():
        print(
            f"{endpoint:<24} {result['requests_per_second']:>10.0f} {result['p50_ms']:>8.2f} "
            f"{result['p99_ms']:>8.2f} {result['non_2xx']:>8}"
            + (f"  socket errors: {result['socket_errors']}" if result["socket_errors"] else "")
        )
    print(
        f"structured extraction, offline, one request at a time, {len(EXTRACTION_NOTES)} notes x "
        f"{args.extraction_rounds} rounds, every text new (uncached) unless marked:"
    )
    print(f"{'endpoint':<30} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'n':>5}")
    for endpoint, result in extraction.items():
        print(
            f"{endpoint:<30} {result['p50_ms']:>8.1f} {result['p95_ms']:>8.1f} {result['max_ms']:>8.1f} "
            f"{result['n']:>5.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
