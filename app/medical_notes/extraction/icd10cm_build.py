"""Compile the ICD-10-CM tabular list shipped by `simple-icd-10-cm` into the service's compact table.

The output is a gzipped TSV, one line per category or subcategory:
`code <TAB> billable (1|0) <TAB> description <TAB> inclusion terms joined by " | "`.
Loading it takes a fraction of a second and needs no third-party package; compiling needs the package
(requirements-terminology.txt) and takes a few seconds.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ICD10CM_PACKAGE = "simple-icd-10-cm"
HEADER_PREFIX = "#icd10cm"


def package_release() -> str:
    """The CDC release the installed package ships, e.g. "April 2026" (from its data file names)."""
    import simple_icd_10_cm

    data_dir = Path(simple_icd_10_cm.__file__).parent / "data"
    for path in sorted(data_dir.glob("code-list-*.txt")):
        month_year = path.stem.removeprefix("code-list-").replace("-", " ")
        return month_year
    return "unknown"


def _clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def write_table(output: Path, lines: list[str]) -> None:
    """The lines as a reproducible gzip file (mtime 0), replaced atomically: readers never see half."""
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
            file.write(("\n".join(lines) + "\n").encode())
        Path(temporary).chmod(0o644)
        Path(temporary).replace(output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def build_icd10cm_table(output: Path) -> dict[str, object]:
    """Write the compiled table atomically; returns what was written (for the CLI's JSON line)."""
    import simple_icd_10_cm as cm

    version = metadata.version(ICD10CM_PACKAGE)
    release = package_release()
    lines = [f"{HEADER_PREFIX}\t{version}\t{release}"]
    billable = 0
    for code in cm.get_all_codes(with_dots=True):
        if not cm.is_category_or_subcategory(code):
            continue
        leaf = cm.is_leaf(code)
        billable += leaf
        inclusion = " | ".join(_clean(term) for term in cm.get_inclusion_term(code))
        lines.append(f"{code}\t{int(leaf)}\t{_clean(cm.get_description(code))}\t{inclusion}")
    write_table(output, lines)
    return {
        "output": str(output),
        "codes": len(lines) - 1,
        "billable": billable,
        "package": f"{ICD10CM_PACKAGE}=={version}",
        "release": release,
    }


if __name__ == "__main__":
    # Standalone (the image's builder stage runs this file with only simple-icd-10-cm installed)
    print(json.dumps(build_icd10cm_table(Path(sys.argv[1]))))
