"""Import NLM's RxNorm prescribable content (RxNorm_full_prescribe_*.zip, no UMLS licence needed).

Reads rrf/RXNCONSO.RRF (and rrf/RXNREL.RRF for brand names and parts) from the zip and writes the two
tables the service loads next to the shipped ones: ingredients (SAB=RXNORM, TTY=IN, not suppressed) with
their brand names (TTY=BN linked by has_tradename / tradename_of), and multiple-ingredient concepts
(TTY=MIN) with their ingredients (has_part / part_of) and brand names, which give combination products
their RxNorm code.
"""

from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from pathlib import Path

from medical_notes.extraction.icd10cm_build import write_table
from medical_notes.extraction.terminology import RXNORM_IMPORTED_FILE, RXNORM_PRODUCTS_IMPORTED_FILE

# RXNCONSO.RRF columns (pipe-separated)
_CUI, _LAT, _SAB, _TTY, _STR, _SUPPRESS = 0, 1, 11, 12, 14, 16
# RXNREL.RRF columns
_CUI1, _CUI2, _RELA, _REL_SAB = 0, 4, 7, 10
_TRADENAME_RELATIONS = frozenset({"has_tradename", "tradename_of"})
_PART_RELATIONS = frozenset({"has_part", "part_of"})


class RxNormImportError(ValueError):
    """The file is not an RxNorm release zip with RXNCONSO.RRF (message says what was wrong)."""


def _member(archive: zipfile.ZipFile, name: str) -> str | None:
    for member in archive.namelist():
        if member.rsplit("/", 1)[-1].upper() == name:
            return member
    return None


def _rows(archive: zipfile.ZipFile, member: str) -> list[list[str]]:
    with archive.open(member) as raw:
        return [
            line.rstrip("\n").split("|") for line in io.TextIOWrapper(raw, encoding="utf-8") if line.strip()
        ]


def import_rxnorm(zip_path: Path, output_dir: Path) -> dict[str, object]:
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise RxNormImportError(f"{zip_path}: not a readable zip file ({error})") from error
    with archive:
        conso_member = _member(archive, "RXNCONSO.RRF")
        if conso_member is None:
            raise RxNormImportError(f"{zip_path}: no RXNCONSO.RRF inside (is this an RxNorm release?)")
        ingredients: dict[str, str] = {}
        combinations: dict[str, str] = {}
        brands: dict[str, str] = {}
        for row in _rows(archive, conso_member):
            if len(row) <= _SUPPRESS:
                raise RxNormImportError(f"{conso_member}: a line has {len(row)} fields, not the RRF layout")
            if row[_SAB] != "RXNORM" or row[_LAT] != "ENG" or row[_SUPPRESS] not in ("N", ""):
                continue
            if row[_TTY] == "IN":
                ingredients.setdefault(row[_CUI], row[_STR])
            elif row[_TTY] == "MIN":
                combinations.setdefault(row[_CUI], row[_STR])
            elif row[_TTY] == "BN":
                brands.setdefault(row[_CUI], row[_STR])
        brand_names: dict[str, set[str]] = defaultdict(set)
        parts: dict[str, set[str]] = defaultdict(set)
        relation_member = _member(archive, "RXNREL.RRF")
        if relation_member is not None:
            for row in _rows(archive, relation_member):
                if len(row) <= _REL_SAB:
                    continue
                pair = (row[_CUI1], row[_CUI2])
                concept = next((cui for cui in pair if cui in ingredients or cui in combinations), None)
                if row[_RELA] in _TRADENAME_RELATIONS:
                    brand = next((cui for cui in pair if cui in brands), None)
                    if concept and brand:
                        brand_names[concept].add(brands[brand])
                elif row[_RELA] in _PART_RELATIONS:
                    combination = next((cui for cui in pair if cui in combinations), None)
                    part = next((cui for cui in pair if cui in ingredients), None)
                    if combination and part:
                        parts[combination].add(part)
    if not ingredients:
        raise RxNormImportError(f"{zip_path}: RXNCONSO.RRF holds no RxNorm ingredients (TTY=IN)")
    source = f"NLM RxNorm prescribable content ({zip_path.name})"
    lines = ["rxcui\tingredient\tbrand_names\tsource"]
    for rxcui, name in sorted(ingredients.items(), key=lambda item: (item[1].lower(), item[0])):
        names = "|".join(sorted(brand_names.get(rxcui, ())))
        lines.append(f"{rxcui}\t{name.lower()}\t{names}\t{source}")
    output = output_dir / RXNORM_IMPORTED_FILE
    write_table(output, lines)
    version = zip_path.stem.rsplit("_", 1)[-1]
    products = ["min_rxcui\tname\tingredients\tbrand_names\taliases\tsource\tversion"]
    for rxcui, name in sorted(combinations.items(), key=lambda item: (item[1].lower(), item[0])):
        if len(parts.get(rxcui, ())) >= 2:
            codes = "|".join(sorted(parts[rxcui]))
            names = "|".join(sorted(brand_names.get(rxcui, ())))
            products.append(f"{rxcui}\t{name.lower()}\t{codes}\t{names}\t\t{source}\t{version}")
    products_output = output_dir / RXNORM_PRODUCTS_IMPORTED_FILE
    write_table(products_output, products)
    return {
        "output": str(output),
        "products_output": str(products_output),
        "ingredients": len(ingredients),
        "combination_products": len(products) - 1,
        "brand_names": sum(len(names) for names in brand_names.values()),
        "source": source,
    }
