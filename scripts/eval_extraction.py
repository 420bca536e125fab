#!/usr/bin/env python3
"""Score the offline extraction pipeline on an annotated split and print the numbers.

Prints a table (precision/recall/F1 per entity type, attribute and code accuracy, safety errors,
duplicates, FHIR validity and US Core profiles, latency) and then one JSON line with the same metrics,
with the issue #19 targets the split misses. The frozen blind split is the default. Tune on `dev`:
`--errors` on the blind split is for checking its annotations, not for writing rules.

Usage: .venv/bin/python scripts/eval_extraction.py [--split blind|dev|v1|DIR] [--errors] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "app"), str(REPO_ROOT / "tests")]

from extraction.evaluate import CORPUS_DIR, evaluate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="blind", help="blind, dev, v1 or a directory of annotated notes")
    parser.add_argument("--errors", action="store_true", help="also list every miss and wrong attribute")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target of the issue is missed")
    args = parser.parse_args()

    directory = CORPUS_DIR / args.split if args.split in ("blind", "dev", "v1") else Path(args.split)
    report = evaluate(directory)
    print(report.table())
    if args.errors:
        for problem in (
            report.mismatches
            + report.safety_errors
            + [m for found in report.duplicates.values() for m in found]
            + report.fhir_invalid
            + report.us_core_missing
        ):
            print(f"  {problem.note}: {problem.entity}: {problem.problem}")
    print(json.dumps(report.as_json(), sort_keys=True))
    return 1 if args.check and report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
