#!/usr/bin/env python3
"""Score the offline extraction pipeline on an annotated split and print the numbers.

Prints a table (precision/recall/F1 per entity type, attribute and code accuracy, FHIR validity, latency)
and then one JSON line with the same metrics. The frozen test split is the default.

Usage: .venv/bin/python scripts/eval_extraction.py [--split test|dev|DIR] [--errors] [--check]
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
    parser.add_argument("--split", default="test", help="test, dev or a directory of annotated notes")
    parser.add_argument("--errors", action="store_true", help="also list every miss and wrong attribute")
    parser.add_argument("--check", action="store_true", help="exit 1 when a threshold of the issue is missed")
    args = parser.parse_args()

    directory = CORPUS_DIR / args.split if args.split in ("test", "dev") else Path(args.split)
    report = evaluate(directory)
    print(report.table())
    if args.errors:
        for problem in report.mismatches + report.negated_or_family_as_patient + report.fhir_invalid:
            print(f"  {problem.note}: {problem.entity}: {problem.problem}")
    print(json.dumps(report.as_json(), sort_keys=True))
    return 1 if args.check and report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
