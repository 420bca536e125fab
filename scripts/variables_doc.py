"""Write docs/variables.md from the comments in every role's defaults/main.yml.

    python scripts/variables_doc.py           # rewrite docs/variables.md
    python scripts/variables_doc.py --check   # exit 1 when docs/variables.md is out of date

The defaults files are the one source of truth: every variable has a comment above it, and
`# ---- title ----` lines group them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "variables.md"
TOP_LEVEL_KEY = re.compile(r"^([a-z][a-z0-9_]*):(?:\s+(.*))?$")
SECTION = re.compile(r"^# -+ (.+?) -*$")
HEADER = """\
# Deployment variables

Generated from the comments in each role's `defaults/main.yml` by `python scripts/variables_doc.py`
(`make lint` fails when this file is out of date). Set them in your inventory's `group_vars`, or as
extra-vars: `make deploy ANSIBLE_ARGS="-e medical_notes_api_port=8080"`. Wrong values stop the play
before anything changes (each role's `meta/argument_specs.yml`, plus cross-field checks).
"""


def escape(text: str) -> str:
    return text.replace("|", "\\|")


def shown_default(raw_value: str, block: list[str]) -> str:
    if raw_value and raw_value not in (">-", ">", "|", "|-"):
        return raw_value
    if raw_value.startswith((">", "|")):
        return " ".join(line.strip() for line in block)
    loaded = yaml.safe_load("\n".join(block))
    return yaml.safe_dump(loaded, default_flow_style=True, width=10_000).strip()


def role_table(defaults: Path) -> list[str]:
    lines = defaults.read_text().splitlines()
    rows: list[str] = []
    comment: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        section = SECTION.match(line)
        if section:
            rows += ["", f"*{section.group(1)}*", "", "| Variable | Default | Meaning |", "|---|---|---|"]
            comment = []
            continue
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
            continue
        key = TOP_LEVEL_KEY.match(line)
        if not key:
            comment = []
            continue
        block = []
        while index < len(lines) and (lines[index].startswith((" ", "-")) or not lines[index].strip()):
            if lines[index].strip():
                block.append(lines[index])
            index += 1
        if not comment:
            raise SystemExit(f"{defaults}: {key.group(1)} has no comment")
        if not rows:
            rows += ["", "| Variable | Default | Meaning |", "|---|---|---|"]
        default = shown_default((key.group(2) or "").strip(), block)
        rows.append(f"| `{key.group(1)}` | `{escape(default)}` | {escape(' '.join(comment))} |")
        comment = []
    return rows


def render() -> str:
    parts = [HEADER.rstrip()]
    for defaults in sorted(REPO.glob("roles/*/defaults/main.yml")):
        role = defaults.parents[1].name
        parts += ["", f"## {role}", "", f"From `roles/{role}/defaults/main.yml`.", *role_table(defaults)]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when docs/variables.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(
                f"{OUTPUT.relative_to(REPO)} is out of date: run python scripts/variables_doc.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
