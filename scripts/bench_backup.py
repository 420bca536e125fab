#!/usr/bin/env python3
"""Benchmark backups and restores of a deployed stack, and the API's throughput during a backup.

Deploys a stack of its own (every name mn_bkp_bench*, port 18310, /opt/mn-bkp-bench) with site.yml
and the tests/ops inventory, then for each size (default 10,000 and 100,000 notes): replaces the
documents with generated synthetic SOAP notes (2-4 kB each), and measures
- the backup: the backup script alone (pg_dump in the backup container) and `make backup` as a whole
  (playbooks/backup.yml), and the size of the file;
- the restore: pg_restore alone into a scratch database, and `make restore` as a whole
  (playbooks/restore.yml: checksum, restore, switch, API restart, /health);
- GET /documents/{random id} with wrk, without and during back-to-back backups.
The stack is removed at the end (playbooks/clean.yml) unless --keep-stack.

Usage: .venv/bin/python scripts/bench_backup.py [--sizes 10000,100000] [--duration 10s] [--keep-stack]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
INVENTORY = REPO / "tests" / "ops" / "inventory"
WRK = shutil.which("wrk") or "/usr/bin/wrk"

PREFIX = "mn_bkp_bench"
BASE_DIR = Path("/opt/mn-bkp-bench")
PORT = 18310
POSTGRES = f"{PREFIX}_postgres"
BACKUP = f"{PREFIX}_backup"
DB_NAME = "medical_notes"
DB_USER = "medical_user"
STACK_VARS = {
    "medical_notes_stack_name": PREFIX,
    "medical_notes_test_stack": "true",
    "medical_notes_api_image_name": f"{PREFIX}/api",
    "medical_notes_api_port": str(PORT),
    # As deployed by default: one worker per core (at most 4).
    "medical_notes_api_workers": "0",
    "medical_notes_backup_keep": "2",
}

COMPLAINTS = [
    "chest tightness on exertion", "productive cough for ten days", "intermittent palpitations",
    "lower back pain radiating to the left leg", "fatigue and increased thirst", "morning headaches",
    "shortness of breath climbing stairs", "burning epigastric pain after meals", "swollen ankles",
    "poor sleep and low mood", "dizziness on standing", "joint stiffness in both hands",
]  # fmt: skip
FINDINGS = [
    "lungs clear to auscultation bilaterally", "mild bibasal crackles", "no peripheral oedema",
    "pitting oedema to mid-shin", "abdomen soft, tender in the epigastrium", "regular rhythm, no murmur",
    "straight-leg raise positive on the left at 40 degrees", "thyroid not enlarged",
    "capillary refill under two seconds", "reduced range of motion in the lumbar spine",
]  # fmt: skip
ASSESSMENTS = [
    "essential hypertension, not at goal", "type 2 diabetes with suboptimal control",
    "community-acquired pneumonia, CURB-65 score 1", "heart failure with reduced ejection fraction",
    "lumbar radiculopathy", "gastro-oesophageal reflux disease", "moderate depressive episode",
    "paroxysmal atrial fibrillation", "chronic kidney disease stage 3a", "iron deficiency anaemia",
]  # fmt: skip
MEDICATIONS = [
    ("lisinopril", "mg once daily", (5, 10, 20, 40)), ("metformin", "mg twice daily", (500, 850, 1000)),
    ("amlodipine", "mg once daily", (5, 10)), ("atorvastatin", "mg at night", (10, 20, 40, 80)),
    ("amoxicillin", "mg three times daily for 5 days", (500, 1000)),
    ("omeprazole", "mg before breakfast", (20, 40)),
    ("sertraline", "mg once daily", (50, 100)), ("apixaban", "mg twice daily", (2.5, 5)),
    ("furosemide", "mg in the morning", (20, 40, 80)), ("ferrous sulfate", "mg on alternate days", (200,)),
]  # fmt: skip
# Words of the free-text sentences: real notes are prose with a wide vocabulary, which compresses far
# less than the repeated template phrases above (gzip about 4x rather than 10x).
VOCABULARY_TEXT = (
    "patient reports denies describes noted mild moderate severe intermittent constant worsening improving "
    "since yesterday last week month year ago after before during while walking resting eating sleeping "
    "pain ache pressure tightness burning numbness tingling weakness swelling redness rash itch fever chills "
    "sweats nausea vomiting diarrhoea constipation appetite weight loss gain fatigue dizziness fall injury "
    "left right upper lower anterior posterior chest abdomen back neck shoulder elbow wrist hand hip knee "
    "ankle foot head eye ear throat skin lungs heart kidney liver bowel bladder wife husband daughter son "
    "carer lives alone works retired smoker drinks units week exercise diet medication adherence missed "
    "doses started stopped changed increased reduced tolerated side effects allergy penicillin codeine "
    "family history mother father sibling diabetes stroke cancer asthma arthritis depression anxiety "
    "examination reveals unremarkable tender guarding crepitus effusion oedema pallor jaundice cyanosis "
    "clubbing murmur wheeze crackles bruit pulse regular irregular reflexes power sensation gait normal "
    "reduced brisk absent present bilateral unilateral plan discussed agreed advised explained reassured "
    "referred requested arranged booked review follow telephone clinic ward hospital emergency pharmacy "
    "nurse physiotherapist dietitian podiatrist consultant results blood urine swab scan ultrasound "
    "x-ray ecg spirometry awaiting pending reviewed within range raised low borderline repeat monitor"
)
VOCABULARY = VOCABULARY_TEXT.split()
PLANS = [
    "repeat renal function and electrolytes in two weeks", "home blood pressure diary for seven days",
    "referral to physiotherapy", "echocardiogram requested", "dietitian referral for carbohydrate counting",
    "safety-netting advice given; return if breathless at rest", "review in four weeks",
    "chest X-ray in six weeks to confirm resolution", "smoking cessation support offered",
    "HbA1c and lipid profile before the next visit", "sick-day rules explained",
]  # fmt: skip


def free_text(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, k=rng.randint(8, 24))
    return " ".join(words).capitalize() + "."


def synthetic_note(rng: random.Random, number: int) -> tuple[str, str, str, str]:
    """(title, content, doc_type, metadata JSON): a SOAP note of 2-4 kB with varied numbers."""
    target = rng.randint(2000, 4000)
    age = rng.randint(19, 94)
    lines = [
        "## Subjective",
        f"{age}-year-old seen for {rng.choice(COMPLAINTS)} over {rng.randint(2, 30)} days.",
    ]
    while sum(len(line) + 1 for line in lines) < target * 0.3:
        lines.append(
            f"Also reports {rng.choice(COMPLAINTS)}; severity {rng.randint(1, 10)}/10, "
            f"worse {rng.choice(['in the morning', 'at night', 'after meals', 'on exertion'])}."
        )
        lines.append(f"{free_text(rng)} {free_text(rng)}")
    lines += [
        "## Objective",
        f"BP {rng.randint(100, 185)}/{rng.randint(60, 110)} mmHg, HR {rng.randint(48, 120)}, "
        f"T {rng.uniform(36.0, 39.2):.1f} C, SpO2 {rng.randint(88, 100)} %, "
        f"weight {rng.uniform(48, 130):.1f} kg.",
        f"HbA1c {rng.uniform(5.2, 11.5):.1f} %, creatinine {rng.randint(55, 190)} umol/L, "
        f"eGFR {rng.randint(25, 110)}, potassium {rng.uniform(3.2, 5.9):.1f} mmol/L.",
    ]
    while sum(len(line) + 1 for line in lines) < target * 0.55:
        lines.append(f"On examination {rng.choice(FINDINGS)}. {free_text(rng)} {free_text(rng)}")
    lines += ["## Assessment", f"{rng.choice(ASSESSMENTS).capitalize()}."]
    while sum(len(line) + 1 for line in lines) < target * 0.7:
        lines.append(f"Differential includes {rng.choice(ASSESSMENTS)}. {free_text(rng)}")
    lines.append("## Plan")
    while sum(len(line) + 1 for line in lines) < target:
        name, unit, doses = rng.choice(MEDICATIONS)
        lines.append(f"- {name} {rng.choice(doses)} {unit}; {rng.choice(PLANS)}. {free_text(rng)}")
    content = "\n".join(lines)
    metadata = json.dumps(
        {"synthetic": True, "clinic": rng.choice(["north", "south", "east"]), "visit": number % 7 + 1}
    )
    return f"Synthetic note {number}", content, "soap_note", metadata


def copy_rows(count: int) -> Iterator[bytes]:
    """COPY text-format rows of generated notes (tabs, newlines and backslashes escaped)."""
    rng = random.Random(20261129)  # the same notes on every run

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    for number in range(1, count + 1):
        title, content, doc_type, metadata = synthetic_note(rng, number)
        content_hash = hashlib.sha256(content.encode()).hexdigest()
        fields = (title, content, doc_type, metadata, content_hash)
        yield ("\t".join(escape(field) for field in fields) + "\n").encode()


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)


def psql(query: str, database: str = DB_NAME) -> str:
    return run(
        ["docker", "exec", POSTGRES, "psql", "--no-psqlrc", "-qtAX", "-v", "ON_ERROR_STOP=1",
         "--username", DB_USER, "--dbname", database, "--command", query]
    ).stdout.strip()  # fmt: skip


def playbook(path: str, *extra: str) -> float:
    """Run a playbook on the benchmark's stack; returns its wall time in seconds."""
    argv = [str(ANSIBLE_PLAYBOOK), "-i", str(INVENTORY), path]
    for name, value in STACK_VARS.items():
        argv += ["-e", f"{name}={value}"]
    for value in extra:
        argv += ["-e", value]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    started = time.monotonic()
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{path} failed:\n{(result.stdout + result.stderr)[-5000:]}")
    return elapsed


def load_notes(count: int) -> float:
    """Replace every document with `count` generated notes; returns the seconds it took."""
    psql("TRUNCATE documents, llm_cache RESTART IDENTITY")
    started = time.monotonic()
    copy = subprocess.Popen(
        ["docker", "exec", "-i", POSTGRES, "psql", "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1",
         "--username", DB_USER, "--dbname", DB_NAME,
         "--command", "COPY documents (title, content, doc_type, metadata, content_hash) FROM STDIN"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert copy.stdin is not None
    for row in copy_rows(count):
        copy.stdin.write(row)
    copy.stdin.close()
    if copy.wait() != 0:
        raise SystemExit(f"loading the notes failed: {copy.stderr.read().decode() if copy.stderr else ''}")
    psql("VACUUM ANALYZE documents")
    return time.monotonic() - started


def backup_once() -> tuple[float, Path]:
    """The backup script alone, in the running backup container."""
    started = time.monotonic()
    output = run(["docker", "exec", BACKUP, "bash", "/usr/local/bin/medical-notes-backup.sh", "once"]).stdout
    elapsed = time.monotonic() - started
    name = re.search(r"BACKUP_FILE=(\S+)", output).group(1)
    return elapsed, BASE_DIR / "backups" / name


def pg_restore_alone(path: Path) -> tuple[float, int]:
    scratch = f"{DB_NAME}_bench_scratch"
    psql(f'DROP DATABASE IF EXISTS "{scratch}"', database="postgres")
    psql(f'CREATE DATABASE "{scratch}"', database="postgres")
    started = time.monotonic()
    with path.open("rb") as dump:
        subprocess.run(
            ["docker", "exec", "-i", POSTGRES, "pg_restore", "--username", DB_USER, "--dbname", scratch,
             "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"],
            stdin=dump, check=True,
        )  # fmt: skip
    elapsed = time.monotonic() - started
    restored = int(psql("SELECT count(*) FROM documents", database=scratch))
    psql(f'DROP DATABASE "{scratch}"', database="postgres")
    return elapsed, restored


def drop_kept_databases() -> None:
    kept = "SELECT datname FROM pg_database WHERE datname LIKE 'medical_notes_before_restore_%'"
    for name in psql(kept, database="postgres").split():
        psql(f'DROP DATABASE "{name}"', database="postgres")


def wrk(count: int, token: str, duration: str, work_dir: Path) -> float:
    script = work_dir / "random_document.lua"
    script.write_text(
        "math.randomseed(7)\n"
        "request = function()\n"
        f'  return wrk.format("GET", "/documents/" .. math.random(1, {count}), '
        f'{{["Authorization"] = "Bearer {token}"}})\n'
        "end\n"
    )
    script.chmod(0o600)
    output = run([WRK, "-t2", "-c16", f"-d{duration}", "-s", str(script), f"https://127.0.0.1:{PORT}"]).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed requests:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def throughput_during_backups(count: int, token: str, duration: str, work_dir: Path) -> tuple[float, int]:
    """req/s while backups run back to back for the whole measurement, and how many ran."""
    stop = threading.Event()
    done: list[float] = []

    def keep_backing_up() -> None:
        while not stop.is_set():
            done.append(backup_once()[0])

    worker = threading.Thread(target=keep_backing_up)
    worker.start()
    time.sleep(0.5)  # the first pg_dump is under way
    try:
        result = wrk(count, token, duration, work_dir)
    finally:
        stop.set()
        worker.join()
    return result, len(done)


def remove_stack() -> None:
    playbook("playbooks/clean.yml", "medical_notes_clean_confirm=yes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--duration", default="10s", help="wrk duration of each throughput measurement")
    parser.add_argument("--keep-stack", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    load_before = os.getloadavg()[0]
    work_dir = Path(tempfile.mkdtemp(prefix="mn-bkp-bench-"))
    rows = []
    try:
        deploy_seconds = playbook("site.yml")
        print(f"deployed the benchmark stack ({PREFIX}*) in {deploy_seconds:.0f} s", flush=True)
        token = (BASE_DIR / "secrets" / "api_token").read_text().strip()
        for count in sizes:
            load_seconds = load_notes(count)
            data_bytes = int(psql("SELECT sum(pg_column_size(content)) FROM documents"))
            table_bytes = int(psql("SELECT pg_total_relation_size('documents')"))
            backup_seconds, path = backup_once()
            size = path.stat().st_size
            make_backup_seconds = playbook("playbooks/backup.yml")
            restore_seconds, restored = pg_restore_alone(path)
            make_restore_seconds = playbook(
                "playbooks/restore.yml",
                f"medical_notes_restore_file={path}",
                "medical_notes_restore_confirm=yes",
            )
            drop_kept_databases()
            normal = wrk(count, token, args.duration, work_dir)
            during, backups_during = throughput_during_backups(count, token, args.duration, work_dir)
            normal_after = wrk(count, token, args.duration, work_dir)
            rows.append(
                {
                    "notes": count,
                    "load_s": load_seconds,
                    "table_mb": table_bytes / 1e6,
                    "content_mb": data_bytes / 1e6,
                    "backup_s": backup_seconds,
                    "make_backup_s": make_backup_seconds,
                    "size_mb": size / 1e6,
                    "restore_s": restore_seconds,
                    "restored": restored,
                    "make_restore_s": make_restore_seconds,
                    "normal_rps": (normal + normal_after) / 2,
                    "during_rps": during,
                    "backups_during": backups_during,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        if not args.keep_stack:
            remove_stack()
            shutil.rmtree(BASE_DIR, ignore_errors=True)

    print()
    print(
        f"{os.cpu_count()} CPUs; 1-min load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        "(other work on the machine skews the numbers); wrk -t2 -c16 GET /documents/{random id}, "
        "API with one worker per core"
    )
    print(
        f"{'notes':>7} {'table MB':>9} {'backup MB':>9} {'backup s':>9} {'make backup s':>13} "
        f"{'restore s':>9} {'make restore s':>14} {'req/s normal':>12} {'req/s backup':>12} {'ratio':>6}"
    )
    for row in rows:
        assert row["restored"] == row["notes"], row
        print(
            f"{row['notes']:>7} {row['table_mb']:>9.0f} {row['size_mb']:>9.1f} {row['backup_s']:>9.1f} "
            f"{row['make_backup_s']:>13.1f} {row['restore_s']:>9.1f} {row['make_restore_s']:>14.1f} "
            f"{row['normal_rps']:>12.0f} {row['during_rps']:>12.0f} "
            f"{row['during_rps'] / row['normal_rps']:>6.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
