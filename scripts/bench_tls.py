"""HTTPS vs plain HTTP throughput of GET /documents/{id} with keep-alive (wrk), on a deployed stack.

Deploys a bench stack with the TLS tests' inventory (stack mn_tls_bench, HTTPS on 127.0.0.1:18444,
one API worker), then measures with wrk, keep-alive, the same token and document:
  plain      HTTP straight to the API container's address (no TLS, no proxy): the baseline
  haproxy    HTTPS through the TLS proxy container (what the deployment publishes)
  uvicorn    HTTPS terminated by uvicorn itself, in a throw-away container of the same image
  *-direct   the same to the container's address, without Docker's published-port forwarding
and prints requests/s, latency percentiles and each HTTPS variant as a share of plain HTTP. The bench
stack and the throw-away container are removed at the end (--keep keeps them).

    .venv/bin/python scripts/bench_tls.py [--duration 10] [--connections 8] [--rounds 2] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACK = "mn_tls_bench"
PORT = 18444
UVICORN_PORT = 18445
BASE_DIR = Path("/opt") / STACK.replace("_", "-")
UVICORN_CONTAINER = f"{STACK}_uvicorn_tls"


@dataclass
class Run:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def playbook(name: str, *args: str) -> None:
    env = {
        **os.environ,
        "MN_TLS_STACK": STACK,
        "MN_TLS_PORT": str(PORT),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    }
    command = [
        str(ROOT / ".venv/bin/ansible-playbook"),
        "-i",
        str(ROOT / "tests/edge/inventory"),
        name,
        *args,
    ]
    print(f"bench-tls: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench-tls: {name} failed:\n{result.stdout[-3000:]}")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def container_ip(name: str) -> str:
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"wrk printed a latency this script does not read: {value!r}")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]


def wrk(url: str, token: str, duration: int, connections: int) -> Run:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Requests/sec" not in output or "50%" not in output:
        raise RuntimeError(f"wrk measured nothing at {url}:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    errors += (
        int(re.search(r"Non-2xx or 3xx responses: (\d+)", output).group(1)) if "Non-2xx" in output else 0
    )
    return Run(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=to_ms(re.search(r"50%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        p99_ms=to_ms(re.search(r"99%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        errors=errors,
    )


def start_uvicorn_tls(key_dir: Path) -> None:
    """The same image, settings and secrets as the stack's API, serving HTTPS with uvicorn's own TLS."""
    api = json.loads(docker("inspect", f"{STACK}_api"))[0]
    shutil.copy(BASE_DIR / "tls/server.crt", key_dir / "server.crt")
    shutil.copy(BASE_DIR / "tls/private/server.key", key_dir / "server.key")
    for path in key_dir.iterdir():
        os.chown(path, 10001, 10001)
        path.chmod(0o400)
    os.chown(key_dir, 10001, 10001)
    docker("rm", "-f", UVICORN_CONTAINER)
    docker(
        "run", "-d", "--name", UVICORN_CONTAINER, "--label", "org.medical-notes.test=true",
        "--network", f"{STACK}_net", "--env-file", str(BASE_DIR / ".env"), "--user", "10001:10001",
        "-v", f"{BASE_DIR}/secrets/api:/run/secrets:ro", "-v", f"{key_dir}:/tls:ro",
        "-v", f"{STACK}_faiss_data:/app/data/faiss_db", "-p", f"127.0.0.1:{UVICORN_PORT}:8443",
        "--read-only", "--tmpfs", "/tmp", api["Config"]["Image"],  # noqa: S108 - the container's own tmpfs
        "python", "-m", "uvicorn", "medical_notes.api:create_app", "--factory", "--host", "0.0.0.0",  # noqa: S104
        "--port", "8443", "--workers", "1", "--no-access-log", "--log-level", "warning", "--no-server-header",
        "--ssl-keyfile", "/tls/server.key", "--ssl-certfile", "/tls/server.crt",
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(BASE_DIR / "tls/ca.crt"))
    for _ in range(60):
        try:
            urllib.request.urlopen(f"https://localhost:{UVICORN_PORT}/health", timeout=3, context=context)
            return
        except OSError:
            time.sleep(1)
    sys.exit("bench-tls: uvicorn with TLS did not answer /health")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three variants (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the bench stack afterwards")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench-tls: needs wrk (apt-get install wrk)")

    playbook("site.yml")
    token = (BASE_DIR / "secrets/api_token").read_text().strip()
    api_ip = docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{STACK}_api"
    )
    request = urllib.request.Request(
        f"http://{api_ip}:8000/documents", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own container
        document_id = json.load(response)[0]
    proxy_ip = container_ip(f"{STACK}_proxy")
    key_dir = Path(tempfile.mkdtemp(prefix="mn-tls-bench-"))
    try:
        start_uvicorn_tls(key_dir)
        uvicorn_ip = container_ip(UVICORN_CONTAINER)
        path = f"/documents/{document_id}"
        # "-direct": the container's address, without Docker's published-port forwarding.
        urls = {
            "plain": f"http://{api_ip}:8000{path}",
            "haproxy": f"https://127.0.0.1:{PORT}{path}",
            "haproxy-direct": f"https://{proxy_ip}:8443{path}",
            "uvicorn": f"https://127.0.0.1:{UVICORN_PORT}{path}",
            "uvicorn-direct": f"https://{uvicorn_ip}:8443{path}",
        }
        results: dict[str, list[Run]] = {name: [] for name in urls}
        for url in urls.values():  # warm-up: connections, caches, the index
            wrk(url, token, 2, args.connections)
        for _ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(wrk(url, token, args.duration, args.connections))
        cpus = os.cpu_count()
        print(
            f"\nGET /documents/{{id}}, wrk -t1 -c{args.connections} -d{args.duration}s, keep-alive, "
            f"1 API worker, {cpus} CPUs; median of {args.rounds} rounds"
        )
        print(f"{'variant':<15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs plain':>9}")
        plain = statistics.median(r.requests_per_second for r in results["plain"])
        for name, runs in results.items():
            rps = statistics.median(r.requests_per_second for r in runs)
            print(
                f"{name:<15} {rps:>9.0f} {statistics.median(r.p50_ms for r in runs):>8.2f} "
                f"{statistics.median(r.p99_ms for r in runs):>8.2f} {sum(r.errors for r in runs):>7d} "
                f"{rps / plain:>8.0%}"
            )
    finally:
        subprocess.run(["docker", "rm", "-f", UVICORN_CONTAINER], capture_output=True, check=False)
        shutil.rmtree(key_dir, ignore_errors=True)
        if not args.keep:
            playbook("playbooks/clean.yml", "-e", "medical_notes_clean_confirm=yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
