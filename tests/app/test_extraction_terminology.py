"""The terminology tables and their command-line steps (compile ICD-10-CM, import RxNorm)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import APP_DIR, cli_env, make_settings

from medical_notes.extraction.terminology import (
    DATA_DIR,
    ICD10CM_FILE,
    RXNORM_IMPORTED_FILE,
    icd10_lookup,
    is_ucum_unit,
    load_terminology,
    loinc_lookup,
    rxnorm_lookup,
    terminology,
)

ISSUE_LABS = {
    "4548-4": "HbA1c",
    "2345-7": "glucose",
    "2093-3": "total cholesterol",
    "2085-9": "HDL",
    "13457-7": "LDL",
    "2571-8": "triglycerides",
    "2160-0": "creatinine",
    "98979-8": "eGFR",
    "2823-3": "potassium",
    "2951-2": "sodium",
    "718-7": "hemoglobin",
    "6690-2": "WBC",
    "3016-3": "TSH",
    "6301-6": "INR",
    "9318-7": "UACR",
}
VITAL_LOINC = (
    "85354-9",
    "8480-6",
    "8462-4",
    "8867-4",
    "9279-1",
    "8310-5",
    "59408-5",
    "29463-7",
    "8302-2",
    "39156-5",
)


def run(args: list[str], tmp_path: Path) -> tuple[int, dict | None, str]:
    """`python -m medical_notes ARGS` as a subprocess: exit code, JSON result, stderr."""
    settings = make_settings("postgresql://unused@127.0.0.1:1/unused", tmp_path)
    process = subprocess.run(
        [sys.executable, "-m", "medical_notes", *args],
        capture_output=True,
        text=True,
        env=cli_env(settings),
        cwd=APP_DIR,
        timeout=120,
        check=False,
    )
    result = json.loads(process.stdout) if process.stdout.strip() else None
    return process.returncode, result, process.stderr


def test_shipped_tables_hold_what_the_issue_asks_for() -> None:
    terms = terminology()
    assert len(terms.ingredients) >= 300
    assert all(ingredient.source for ingredient in terms.ingredients.values())
    assert rxnorm_lookup("6809") == "metformin"
    assert rxnorm_lookup("1364430") == "apixaban"
    for code, name in ISSUE_LABS.items():
        assert terms.loinc[code].name == name
        assert loinc_lookup(code)
    for code in VITAL_LOINC:
        assert terms.loinc[code].kind == "vital"
    for unit in ("mm[Hg]", "/min", "Cel", "[degF]", "%", "kg", "[lb_av]", "cm", "kg/m2", "ug", "{puff}"):
        assert is_ucum_unit(unit)
    assert not is_ucum_unit("mg/dl")  # UCUM is case-sensitive: mg/dL


def test_curated_synonyms_map_to_billable_codes() -> None:
    terms = terminology()
    assert terms.condition_terms["htn"] == "I10"
    assert terms.condition_terms["t2dm"] == "E11.9"
    assert terms.condition_terms["ckd 3a"] == "N18.31"
    assert terms.condition_terms["copd exacerbation"] == "J44.1"
    assert terms.condition_terms["hfref"] == "I50.22"
    for code in terms.condition_terms.values():
        assert terms.icd10cm[code].billable, code
    assert icd10_lookup("E11.9") == "Type 2 diabetes mellitus without complications"
    assert icd10_lookup("E11.99999") is None


def test_code_search_prefers_billable_codes() -> None:
    terms = terminology()
    best = terms.search_icd10cm("acute cystitis without hematuria")[0]
    assert best.code == "N30.00"
    assert best.score == 1.0
    assert all(terms.icd10cm[c.code].billable for c in terms.search_icd10cm("chronic kidney disease stage 4"))
    assert terms.billable_code("E11") == "E11.9"
    assert terms.search_icd10cm("the of and") == []


def test_build_icd10cm_compiles_the_package_release(tmp_path: Path) -> None:
    code, result, stderr = run(["terminology", "build-icd10cm", "--output-dir", str(tmp_path)], tmp_path)
    assert code == 0, stderr
    assert result["codes"] > 90_000
    assert result["billable"] > 70_000
    assert result["package"] == "simple-icd-10-cm==1.5.0"
    with gzip.open(tmp_path / ICD10CM_FILE, "rt") as table:
        header = table.readline()
        rows = {line.split("\t")[0]: line for line in table}
    assert header.startswith("#icd10cm\t1.5.0\t")
    assert rows["I10"].split("\t")[1] == "1"
    assert rows["E11"].split("\t")[1] == "0"  # a category, not billable


def _rrf(*fields: str) -> str:
    return "|".join(fields) + "|\n"


def conso(rxcui: str, tty: str, name: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    # RXCUI|LAT|TS|LUI|STT|SUI|ISPREF|RXAUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF
    return _rrf(
        rxcui,
        "ENG",
        "",
        "",
        "",
        "",
        "",
        f"A{rxcui}{tty}",
        "",
        "",
        "",
        sab,
        tty,
        rxcui,
        name,
        "",
        suppress,
        "4096",
    )


def rel(rxcui1: str, rela: str, rxcui2: str) -> str:
    # RXCUI1|RXAUI1|STYPE1|REL|RXCUI2|RXAUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|DIR|RG|SUPPRESS|CVF
    return _rrf(rxcui1, "", "CUI", "RO", rxcui2, "", "CUI", rela, "", "", "RXNORM", "", "", "", "N", "")


def test_import_rxnorm_reads_the_prescribable_zip(tmp_path: Path) -> None:
    archive = tmp_path / "RxNorm_full_prescribe_11032026.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "rrf/RXNCONSO.RRF",
            conso("999001", "IN", "Zebratinib")
            + conso("999002", "BN", "Zebrix")
            + conso("999003", "IN", "Oldmycin", suppress="O")
            + conso("999004", "IN", "Othersource", sab="MTHSPL")
            + conso("999005", "SCD", "Zebratinib 10 MG Oral Tablet")
            # a combination the shipped table has without its MIN code, and one it does not have
            + conso("1656328", "IN", "sacubitril")
            + conso("69749", "IN", "valsartan")
            + conso("999010", "MIN", "sacubitril / valsartan")
            + conso("999011", "BN", "Entresto")
            + conso("999012", "MIN", "valsartan / zebratinib")
            + conso("999013", "BN", "Zebrival"),
        )
        zipped.writestr(
            "rrf/RXNREL.RRF",
            rel("999002", "has_tradename", "999001")
            + rel("999010", "has_part", "1656328")
            + rel("999010", "has_part", "69749")
            + rel("999011", "tradename_of", "999010")
            + rel("999012", "has_part", "69749")
            + rel("999012", "has_part", "999001")
            + rel("999013", "tradename_of", "999012"),
        )
    output = tmp_path / "terminology"
    code, result, stderr = run(
        ["terminology", "import-rxnorm", str(archive), "--output-dir", str(output)], tmp_path
    )
    assert code == 0, stderr
    assert result["ingredients"] == 3
    assert result["combination_products"] == 2
    with gzip.open(output / RXNORM_IMPORTED_FILE, "rt") as table:
        lines = table.read().splitlines()
    assert ["999001", "zebratinib", "Zebrix"] in [line.split("\t")[:3] for line in lines]

    # the service picks the imported tables up next to the compiled ICD-10-CM one
    (output / ICD10CM_FILE).symlink_to(terminology_file())
    terms = load_terminology(output)
    assert terms.ingredients["999001"].name == "zebratinib"
    assert terms.drug_names["zebrix"] == "999001"
    assert terms.drug_names["metformin"] == "6809"  # the shipped table stays
    entresto = terms.products[terms.product_names["entresto"]]
    assert entresto.min_rxcui == "999010"  # the import completes the shipped product
    assert "sacubitril-valsartan" in entresto.aliases
    zebrival = terms.products[terms.product_names["zebrival"]]
    assert (zebrival.min_rxcui, zebrival.name) == ("999012", "valsartan / zebratinib")


def terminology_file() -> Path:
    from medical_notes.extraction.terminology import terminology_dir

    return terminology_dir() / ICD10CM_FILE


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a zip", "not a readable zip"), (None, "no RXNCONSO.RRF")],
)
def test_import_rxnorm_rejects_other_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    archive = tmp_path / "release.zip"
    if content is None:
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("readme.txt", "hello")
    else:
        archive.write_bytes(content)
    code, result, stderr = run(
        ["terminology", "import-rxnorm", str(archive), "--output-dir", str(tmp_path)], tmp_path
    )
    assert code == 1
    assert result is None
    assert message in stderr
    assert not (tmp_path / RXNORM_IMPORTED_FILE).exists()


def test_shipped_data_files_are_tab_separated_with_sources() -> None:
    header, *rows = [
        line.split("\t") for line in (DATA_DIR / "rxnorm_ingredients.tsv").read_text().splitlines() if line
    ]
    assert header == ["rxcui", "ingredient", "brand_names", "source"]
    assert {row[3] for row in rows} <= {"CPIC", "curated"}
    assert len({row[0] for row in rows}) == len(rows)
