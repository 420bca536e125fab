"""The annotated splits are well-formed: verbatim evidence, real codes, the contract's vocabularies.

corpus/blind (the frozen test split of issue #19) and corpus/dev use the annotation format of
docs/fhir-and-evaluation.md; corpus/v1 (the first test split) the older one, without `safety`.
"""

from __future__ import annotations

import re

import pytest
import simple_icd_10_cm as icd10

from extraction.evaluate import BLIND_SPLIT, DEV_SPLIT, V1_SPLIT, Note, load_split, occurrences, options
from medical_notes.extraction.terminology import rxnorm_lookup

BLIND = load_split(BLIND_SPLIT)
NOTES = BLIND + load_split(DEV_SPLIT) + load_split(V1_SPLIT)
ASSERTIONS = {"present", "absent", "possible", "historical", "hypothetical", "family"}
ROUTES = {
    "oral", "sublingual", "subcutaneous", "intramuscular", "intravenous", "inhaled", "nebulized", "topical",
    "transdermal", "intranasal", "ophthalmic", "otic", "rectal", "vaginal", None,
}  # fmt: skip
FREQUENCY = re.compile(
    r"once|daily|BID|TID|QID|qAM|qPM|nightly|q\d+h|q\d+min|weekly|every_other_day|monthly|continuous"
)
STATUSES = {"active", "started", "changed", "stopped", "held"}
VITAL_KINDS = {
    "blood_pressure", "heart_rate", "respiratory_rate", "temperature", "oxygen_saturation", "weight",
    "height", "bmi",
}  # fmt: skip
UCUM_VITAL_UNITS = {"/min", "Cel", "[degF]", "%", "kg", "[lb_av]", "cm", "[in_i]", "kg/m2"}
SAFETY_KINDS = {
    "negated", "ruled_out", "hypothetical", "family", "other_person", "refused_order", "not_given",
    "susceptibility", "allergen", "not_allergy",
}  # fmt: skip
ENCOUNTER_CLASSES = {"EMER", "IMP", "AMB", "VR", "HH"}
STYLES = {
    "ed", "discharge", "consult", "progress", "office", "psychiatry", "pediatrics", "nursing", "telephone",
    "icu", "prenatal", "oncology",
}  # fmt: skip


def evidence_strings(note: Note):
    for section in ("conditions", "medications", "allergies", "procedures", "safety"):
        for item in note.expected.get(section, []):
            yield section, item["text"]
            for mention in item.get("mentions", []):
                yield section, mention
    for mention in note.expected.get("absent_or_family_mentions", []):
        yield "absent_or_family_mentions", mention


def test_the_blind_split_has_at_least_60_notes_in_at_least_8_styles_with_safety_items():
    assert len(BLIND) >= 60
    assert len({note.expected["note_type"] for note in BLIND}) >= 8
    assert all(len(note.expected["safety"]) >= 3 for note in BLIND)


@pytest.mark.parametrize("note", NOTES, ids=lambda n: n.name)
def test_evidence_is_verbatim(note: Note):
    missing = [(kind, text) for kind, text in evidence_strings(note) if not occurrences(note.text, text)]
    assert missing == []


@pytest.mark.parametrize("note", NOTES, ids=lambda n: n.name)
def test_condition_codes_are_billable_icd10cm(note: Note):
    for condition in note.expected.get("conditions", []):
        assert set(options(condition["assertion"])) <= ASSERTIONS
        for code in options(condition["icd10"]):
            assert icd10.is_valid_item(code), f"{code} is not an ICD-10-CM code"
            assert icd10.is_leaf(code), f"{code} is a category, not a billable code"


@pytest.mark.parametrize("note", NOTES, ids=lambda n: n.name)
def test_medications_use_the_contract_vocabularies(note: Note):
    for medication in note.expected.get("medications", []):
        rxcuis = [rxcui for rxcui in options(medication["rxcui"]) if rxcui is not None]
        assert all(re.fullmatch(r"\d+", rxcui) for rxcui in rxcuis)
        if rxcuis and "ingredients" not in medication and not medication.get("optional"):
            # The first split's annotators coded against the shipped table.
            assert rxnorm_lookup(rxcuis[0]), f"{medication['name']}: {rxcuis[0]} is not in the table"
        for ingredient in medication.get("ingredients", []):
            assert ingredient["name"]
            assert re.fullmatch(r"\d+", str(ingredient.get("rxcui") or "0"))
        assert set(options(medication["route"])) <= ROUTES
        for frequency in options(medication["frequency"]):
            assert frequency is None or FREQUENCY.fullmatch(frequency), frequency
        assert set(options(medication.get("status", "active"))) <= STATUSES
        for dose in options(medication["dose"]):
            assert dose is None or (isinstance(dose["value"], int | float) and dose["unit"])


@pytest.mark.parametrize("note", BLIND + load_split(V1_SPLIT), ids=lambda n: n.name)
def test_vitals_and_labs_are_stated_in_the_note(note: Note):
    for vital in note.expected.get("vital_signs", []):
        assert vital["kind"] in VITAL_KINDS
        if vital["kind"] == "blood_pressure":
            values = [vital["systolic"], vital["diastolic"]]
        else:
            values = [vital["value"]]
            assert vital["unit"] in UCUM_VITAL_UNITS
        for value in [] if vital.get("optional") else values:
            assert re.search(rf"(?<![\d.]){value:g}(?![\d])", note.text), f"{vital} not in the note"
    digits = note.text.replace(",", "")
    for lab in note.expected.get("lab_results", []):
        value = f"{lab['value']:g}"
        assert re.search(rf"(?<![\d.]){re.escape(value)}", digits), f"{lab} not in the note"
        assert all(re.fullmatch(r"\d+-\d", code) for code in options(lab["loinc"]))


@pytest.mark.parametrize("note", [n for n in NOTES if "safety" in n.expected], ids=lambda n: n.name)
def test_the_new_format_has_a_note_type_verified_allergies_and_safety_kinds(note: Note):
    assert note.expected["note_type"] in STYLES
    assert note.expected["encounter_class"] in ENCOUNTER_CLASSES
    for allergy in note.expected.get("allergies", []):
        assert allergy["verification"] in ("confirmed", "unconfirmed")
    for item in note.expected["safety"]:
        assert item["entity"] in ("condition", "medication", "allergy")
        assert item["kind"] in SAFETY_KINDS
