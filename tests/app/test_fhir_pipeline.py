"""FHIR export of the real offline pipeline's output: valid bundles that keep negations and family apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from medical_notes.extraction import extract_structured
from medical_notes.fhir import build_bundle

DEV_NOTES = sorted((Path(__file__).resolve().parents[1] / "extraction" / "corpus" / "dev").glob("*.md"))

NOTE = """Clinic visit 2026-03-02. 64 y/o woman.
S: Follow-up of type 2 diabetes. Denies chest pain. Mother had breast cancer.
Meds: metformin 500 mg PO BID.
O: BP 142/88, HR 78, T 98.6 F, SpO2 97% RA, Wt 182 lb, BMI 31.2.
Labs: HbA1c 7.8% (H).
A: Type 2 diabetes mellitus, above goal.
P: Start empagliflozin 10 mg PO daily. Repeat HbA1c in 3 months.
"""


US_CORE_TYPES = {
    "Patient", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance", "Observation",
    "Procedure", "DocumentReference", "Provenance", "ServiceRequest", "CarePlan",
}  # fmt: skip


@pytest.mark.parametrize("path", DEV_NOTES, ids=lambda p: p.stem)
def test_every_dev_note_gives_a_valid_us_core_bundle_once_it_has_a_date(path: Path):
    text = path.read_text(encoding="utf-8")
    if extract_structured(text)["encounter"]["date"] is None:
        # an observation needs a time: a note that states none gets errors that say so, nothing else
        errors = build_bundle(extract_structured(text), source_text=text).validation.errors
        assert all("no date" in error for error in errors), errors
        text = "Date: 2026-01-05\n" + text
    for bundle_type in ("collection", "transaction"):
        result = build_bundle(extract_structured(text), bundle_type=bundle_type, source_text=text)
        assert result.validation.valid, result.validation.errors
        for entry in result.bundle["entry"]:
            if entry["resource"]["resourceType"] in US_CORE_TYPES:
                profiles = entry["resource"]["meta"]["profile"]
                assert any(p.startswith("http://hl7.org/fhir/us/core/StructureDefinition/") for p in profiles)


def test_the_bundle_of_a_real_extraction_is_deterministic_and_keeps_negations_and_family_out():
    extraction = extract_structured(NOTE)
    first = build_bundle(extraction, source_text=NOTE)
    again = build_bundle(extract_structured(NOTE), source_text=NOTE)
    assert first.model_dump() == again.model_dump()
    assert first.validation.valid, first.validation.errors

    resources = [entry["resource"] for entry in first.bundle["entry"]]
    condition_texts = [
        r["code"].get("text", "").lower() for r in resources if r["resourceType"] == "Condition"
    ]
    assert any("diabetes" in text for text in condition_texts)
    assert not any("chest pain" in text or "breast cancer" in text for text in condition_texts)
    histories = [r for r in resources if r["resourceType"] == "FamilyMemberHistory"]
    assert [h["relationship"]["coding"][0]["code"] for h in histories] == ["MTH"]

    counts = first.resource_counts
    assert counts["MedicationStatement"] >= 1
    assert counts["MedicationRequest"] >= 1
    vital_codes = {
        coding["code"]
        for r in resources
        if r["resourceType"] == "Observation" and r["category"][0]["coding"][0]["code"] == "vital-signs"
        for coding in r["code"]["coding"]
    }
    assert {"85354-9", "8867-4", "8310-5", "2708-6", "29463-7", "39156-5"} <= vital_codes
