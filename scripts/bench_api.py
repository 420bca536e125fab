#!/usr/bin/env python3
"""Benchmark the API as deployed: one uvicorn worker, a real PostgreSQL 15 (fsync on), wrk as the load.

Starts a throw-away PostgreSQL server (the same helper the tests use), seeds and indexes through the
command line, creates a read-scope API client, starts `python -m medical_notes serve --workers 1`, then
runs `wrk -t2 -c32 -d10s --latency` against GET /health, GET /documents/{id} (with the client key and
with the bootstrap API_TOKEN), POST /documents and offline POST /answer_question, and prints requests/s
and p50/p99 latency per endpoint plus the index build time. A second server with AUDIT_ENABLED=false
serves the same GET /documents/{id} and POST /documents: the cost of the audit trail. Runs alternate
between the two servers, each endpoint --rounds times, and the median run is shown.
Then the structured extraction: one request at a time, every note a different text (so never a cached
result), POST /extract_structured and POST /to_fhir over the shipped and dev-split notes, p50/p95/max.

Usage: .venv/bin/python scripts/bench_api.py [--duration 10s] [--connections 32] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
from collections.abc import Iterator
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
BOOTSTRAP_TOKEN = "bench-bootstrap-token"  # noqa: S105 - a throw-away server's credential
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


@dataclasses.dataclass(frozen=True)
class Server:
    url: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(
    server: Server, path: str, args: argparse.Namespace, token: str, script: Path | None = None
) -> dict:
    """One wrk run; also the server process's CPU time per request, which other load on the machine
    barely changes (unlike requests/s)."""
    url = server.url + path
    command = [WRK, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}"]
    if script is not None:
        command += ["-s", str(script)]
    cpu_before = cpu_seconds(server.pid)
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server.pid) - cpu_before
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latencies = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if set(latencies) != {"50", "99"}:
        raise SystemExit(f"unexpected wrk output for {url}:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests_per_second": requests_per_second,
        "p50_ms": _milliseconds(latencies["50"]),
        "p99_ms": _milliseconds(latencies["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "cpu_us": cpu * 1e6 / max(requests, 1),
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its latencies belong to the same run), with the median
    CPU time per request over all runs."""
    median = dict(sorted(runs, key=lambda run: run["requests_per_second"])[len(runs) // 2])
    median["cpu_us"] = sorted(run["cpu_us"] for run in runs)[len(runs) // 2]
    return median


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, log_path: Path) -> Iterator[Server]:
    """`python -m medical_notes serve` with one worker, once healthy."""
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "medical_notes", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "API_WORKERS": "1"},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_healthy(base_url, server, log_path)
            yield Server(base_url, server.pid)
            server.terminate()
            server.wait(timeout=15)
        finally:
            if server.poll() is None:
                server.kill()


def create_document(server: Server) -> int:
    request = urllib.request.Request(  # noqa: S310 - local URL
        f"{server.url}/documents",
        data=json.dumps(POST_DOCUMENT).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {BOOTSTRAP_TOKEN}"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 - local URL
        return json.load(response)["id"]


def post_json(url: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(  # noqa: S310 - local URL
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
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


def bench_extraction(base_url: str, rounds: int, token: str) -> dict[str, dict[str, float]]:
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
            result = post_json(f"{base_url}/extract_structured", {"text": text}, token)
            timings["POST /extract_structured"].append((time.perf_counter() - started) * 1000)
            assert result["cached"] is False
            started = time.perf_counter()
            post_json(f"{base_url}/extract_structured", {"text": text}, token)
            timings["  same text again (cached)"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            bundle = post_json(f"{base_url}/to_fhir", {"text": text + "fhir"}, token)
            timings["POST /to_fhir"].append((time.perf_counter() - started) * 1000)
            # a note that states no date gives undated observations, which the validator reports
            errors = [e for e in bundle["validation"]["errors"] if "the note states no date" not in e]
            assert errors == [], errors
    return {name: percentiles(samples) for name, samples in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="runs per endpoint; the median is shown")
    parser.add_argument(
        "--log-level", default="info", help="LOG_LEVEL of the server (request lines are info)"
    )
    parser.add_argument(
        "--extraction-rounds", type=int, default=3, help="passes over the notes for the extraction section"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    work_dir = Path(tempfile.mkdtemp(prefix="medical-notes-bench-"))
    try:
        with PostgresServer(durable=True) as postgres:
            database_url = postgres.create_database("medical_notes")
            # The benchmark's own settings, not whatever provider, token or embedding the shell exports
            inherited = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("LLM_", "EMBEDDING_", "API_", "AUDIT_"))
            }
            env = {
                **inherited,
                "PYTHONPATH": str(REPO_ROOT / "app"),
                "DATABASE_URL": database_url,
                "FAISS_INDEX_DIR": str(work_dir / "faiss_db"),
                "LLM_PROVIDER": "offline",
                "EMBEDDING_PROVIDER": "local",
                "LOG_LEVEL": args.log_level,
                "API_TOKEN": BOOTSTRAP_TOKEN,
            }
            seeded = run_cli(env, "seed")
            started = time.monotonic()
            index = run_cli(env, "index", "--force")
            index_wall = time.monotonic() - started
            reader = run_cli(env, "clients", "create", "bench-reader", "--scope", "read")["token"]

            post_document = post_script(work_dir, "post_document", POST_DOCUMENT)
            question = post_script(work_dir, "question", QUESTION)
            with contextlib.ExitStack() as servers:
                # Both servers run at once and their runs alternate, so load from other work on the
                # machine falls on both sides of the comparison alike.
                audited = servers.enter_context(serving(env, free_port(), work_dir / "audited.log"))
                unaudited = servers.enter_context(
                    serving({**env, "AUDIT_ENABLED": "false"}, free_port(), work_dir / "unaudited.log")
                )
                document = f"/documents/{create_document(audited)}"
                runs: dict[str, tuple[Server, str, str, Path | None]] = {
                    "GET /health": (audited, "/health", reader, None),
                    "GET /documents/{id}": (audited, document, reader, None),
                    "GET /documents/{id} no audit": (unaudited, document, reader, None),
                    "GET /documents/{id} API_TOKEN": (audited, document, BOOTSTRAP_TOKEN, None),
                    "POST /documents": (audited, "/documents", BOOTSTRAP_TOKEN, post_document),
                    "POST /documents no audit": (unaudited, "/documents", BOOTSTRAP_TOKEN, post_document),
                    "POST /answer_question": (audited, "/answer_question", reader, question),
                }
                rounds: dict[str, list[dict]] = {name: [] for name in runs}
                for _ in range(args.rounds):
                    for name, (server, path, token, script) in runs.items():
                        rounds[name].append(run_wrk(server, path, args, token, script))
                results = {name: median_run(measured) for name, measured in rounds.items()}
                extraction = bench_extraction(audited.url, args.extraction_rounds, reader)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    print(f"seed: {json.dumps(seeded)}")
    print(
        f"index build (shipped guidelines, --force): {index['seconds']:.3f} s in the builder, "
        f"{index_wall:.2f} s for the whole command ({index['chunks']} chunks, {index['documents']} documents)"
    )
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}, median of {args.rounds} runs, "
        "one uvicorn worker, "
        f"LOG_LEVEL={args.log_level}, PostgreSQL 15 with fsync on; "
        f"1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"({os.cpu_count()} CPUs; other work on the machine skews the numbers)"
    )
    print("GET requests use a read-scope client key, POST /documents the bootstrap API_TOKEN;")
    print("CPU us/req: the API server process only (PostgreSQL's work is not counted)")
    print(f"{'endpoint':<30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU us/req':>11}")
    for endpoint, result in results.items():
        print(
            f"{endpoint:<30} {result['requests_per_second']:>10.0f} {result['p50_ms']:>8.2f} "
            f"{result['p99_ms']:>8.2f} {result['non_2xx']:>8} {result['cpu_us']:>11.0f}"
            + (f"  socket errors: {result['socket_errors']}" if result["socket_errors"] else "")
        )
    for with_audit, without_audit in (
        ("GET /documents/{id}", "GET /documents/{id} no audit"),
        ("POST /documents", "POST /documents no audit"),
    ):
        audited, unaudited = results[with_audit], results[without_audit]
        throughput = 1 - audited["requests_per_second"] / unaudited["requests_per_second"]
        cpu = audited["cpu_us"] / unaudited["cpu_us"] - 1
        print(f"audit cost on {with_audit}: {throughput:.1%} of throughput, {cpu:+.1%} server CPU a request")
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
