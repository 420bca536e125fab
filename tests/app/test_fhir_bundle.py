"""FHIR R4 export: bundle content, determinism and the offline validation (structure and our own rules)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import pytest

from medical_notes.fhir import build_bundle
from medical_notes.fhir.validation import validate_bundle

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

NOTE = (
    "Visit 2026-02-03. 61 y/o male.\n"
    "S: HTN f/u. Denies chest pain. Possible gout. Hx of kidney stones. Mother had breast cancer; "
    "father with type 2 diabetes. Return if fever.\n"
    "Allergies: penicillin (hives).\n"
    "Meds: amlodipine 5 mg PO daily; albuterol 2 puffs inhaled q4h PRN wheeze; ibuprofen 400 mg stopped; "
    "spironolactone 25 mg held.\n"
    "O: BP 148/92, HR 76, T 98.4 F, SpO2 98% RA, Wt 204 lb, BMI 30.1\n"
    "Labs: HbA1c 7.8% (4.0-5.6) H, potassium 5.4 mmol/L H\n"
    "s/p appendectomy 2010.\n"
    "P: Start lisinopril 10 mg PO twice daily x 30 days. BMP in 2 weeks. Refer to nephrology. "
    "Return in 4 weeks."
)


def span(phrase: str) -> list[int]:
    start = NOTE.index(phrase)
    return [start, start + len(phrase)]


def icd(code: str, display: str) -> dict[str, str]:
    return {"system": ICD10CM, "code": code, "display": display}


def daily(times: int = 1, code: str = "daily") -> dict[str, Any]:
    return {"code": code, "frequency": times, "period": 1, "period_unit": "d"}


def extraction() -> dict[str, Any]:
    """A hand-written `/extract_structured` result in the contract's shape."""
    return {
        "source_sha256": hashlib.sha256(NOTE.encode()).hexdigest(),
        "pipeline_version": "test-1",
        "provider": "offline",
        "model": "offline",
        "patient": {"age": 61, "sex": "male"},
        "encounter": {"date": "2026-02-03"},
        "conditions": [
            {"text": "HTN", "span": span("HTN"), "code": icd("I10", "Essential (primary) hypertension"),
             "assertion": "present"},
            {"text": "chest pain", "span": span("chest pain"), "assertion": "absent",
             "code": icd("R07.9", "Chest pain, unspecified")},
            {"text": "gout", "span": span("gout"), "code": icd("M10.9", "Gout, unspecified"),
             "assertion": "possible"},
            {"text": "kidney stones", "span": span("kidney stones"), "code": None, "assertion": "historical"},
            {"text": "fever", "span": span("fever"), "code": icd("R50.9", "Fever, unspecified"),
             "assertion": "hypothetical"},
        ],
        "family_history": [
            {"text": "Mother had breast cancer", "span": span("Mother had breast cancer"),
             "relationship": "mother", "condition": "breast cancer", "code": None},
            {"text": "father with type 2 diabetes", "span": span("father with type 2 diabetes"),
             "relationship": "father", "condition": "type 2 diabetes",
             "code": icd("E11.9", "Type 2 diabetes mellitus without complications")},
        ],
        "medications": [
            {"text": "amlodipine 5 mg PO daily", "span": span("amlodipine 5 mg PO daily"),
             "name": "amlodipine",
             "rxnorm": {"code": "17767", "display": "amlodipine"}, "dose": {"value": 5, "unit": "mg"},
             "route": "oral", "frequency": daily(), "as_needed": False, "duration": None, "status": "active"},
            {"text": "albuterol 2 puffs inhaled q4h PRN", "span": span("albuterol 2 puffs inhaled q4h PRN"),
             "name": "albuterol", "rxnorm": {"code": "435", "display": "albuterol"},
             "dose": {"value": 2, "unit": "{puff}"}, "route": "inhaled",
             "frequency": {"code": "q4h", "frequency": 1, "period": 4, "period_unit": "h"}, "as_needed": True,
             "duration": None, "status": "active"},
            {"text": "ibuprofen 400 mg stopped", "span": span("ibuprofen 400 mg stopped"),
             "name": "ibuprofen",
             "rxnorm": {"code": "5640", "display": "ibuprofen"}, "dose": {"value": 400, "unit": "mg"},
             "route": None, "frequency": None, "as_needed": False, "duration": None, "status": "stopped"},
            {"text": "spironolactone 25 mg held", "span": span("spironolactone 25 mg held"),
             "name": "spironolactone", "rxnorm": {"code": "9997", "display": "spironolactone"},
             "dose": {"value": 25, "unit": "mg"}, "route": None, "frequency": None, "as_needed": False,
             "duration": None, "status": "held"},
            {"text": "lisinopril 10 mg PO twice daily x 30 days",
             "span": span("lisinopril 10 mg PO twice daily x 30 days"),
             "name": "lisinopril", "rxnorm": {"code": "29046", "display": "lisinopril"},
             "dose": {"value": 10, "unit": "mg"}, "route": "oral", "frequency": daily(2, "BID"),
             "as_needed": False, "duration": {"value": 30, "unit": "d"}, "status": "started"},
        ],
        "vital_signs": [
            {"kind": "blood_pressure", "loinc": "85354-9", "systolic": 148, "diastolic": 92, "unit": "mm[Hg]",
             "span": span("BP 148/92")},
            {"kind": "heart_rate", "loinc": "8867-4", "value": 76, "unit": "/min", "span": span("HR 76")},
            {"kind": "temperature", "loinc": "8310-5", "value": 98.4, "unit": "[degF]",
             "span": span("T 98.4 F")},
            {"kind": "oxygen_saturation", "loinc": "59408-5", "value": 98, "unit": "%",
             "span": span("SpO2 98%")},
            {"kind": "weight", "loinc": "29463-7", "value": 204, "unit": "[lb_av]",
             "span": span("Wt 204 lb")},
            {"kind": "bmi", "loinc": "39156-5", "value": 30.1, "unit": "kg/m2", "span": span("BMI 30.1")},
        ],
        "lab_results": [
            {"name": "HbA1c", "loinc": "4548-4", "value": 7.8, "unit": "%", "reference_range": "4.0-5.6",
             "flag": "H", "span": span("HbA1c 7.8%")},
            {"name": "potassium", "loinc": "2823-3", "value": 5.4, "unit": "mmol/L", "reference_range": None,
             "flag": "H", "span": span("potassium 5.4 mmol/L")},
        ],
        "allergies": [
            {"text": "penicillin (hives)", "span": span("penicillin (hives)"), "substance": "penicillin",
             "reaction": "hives", "rxnorm": None},
        ],
        "procedures": [{"text": "appendectomy", "span": span("appendectomy"), "code": None, "date": "2010"}],
        "plan": [
            {"text": "BMP in 2 weeks", "span": span("BMP in 2 weeks"), "kind": "test"},
            {"text": "Refer to nephrology", "span": span("Refer to nephrology"), "kind": "referral"},
            {"text": "Return in 4 weeks", "span": span("Return in 4 weeks"), "kind": "follow_up"},
        ],
        "warnings": [],
    }  # fmt: skip


def resources_of(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def test_the_bundle_is_valid_r4_with_every_resource_type():
    result = build_bundle(extraction(), source_text=NOTE)

    assert result.validation.valid, result.validation.errors
    assert result.validation.errors == []
    assert result.bundle["resourceType"] == "Bundle"
    assert result.bundle["type"] == "collection"
    assert result.resource_counts == {
        "AllergyIntolerance": 1,
        "CarePlan": 1,
        "Condition": 3,
        "Device": 1,
        "DocumentReference": 1,
        "Encounter": 1,
        "FamilyMemberHistory": 2,
        "MedicationRequest": 1,
        "MedicationStatement": 4,
        "Observation": 8,
        "Patient": 1,
        "Procedure": 1,
        "Provenance": 1,
        "ServiceRequest": 2,
    }


def test_every_reference_resolves_and_full_urls_are_uuid_urns():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    for entry in bundle["entry"]:
        assert entry["resource"]["id"] == entry["fullUrl"].removeprefix("urn:uuid:")

    references = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                references.append(node["reference"])
            for child in node.values():
                collect(child)
        elif isinstance(node, list):
            for child in node:
                collect(child)

    collect(bundle["entry"])
    assert references
    assert set(references) <= set(full_urls)


def test_the_same_input_gives_the_same_bundle_and_another_note_other_ids():
    first = build_bundle(extraction(), source_text=NOTE)
    second = build_bundle(copy.deepcopy(extraction()), source_text=NOTE)
    assert json.dumps(first.model_dump(), sort_keys=True) == json.dumps(second.model_dump(), sort_keys=True)

    other = extraction()
    other["source_sha256"] = hashlib.sha256(b"another note").hexdigest()
    other_urls = {e["fullUrl"] for e in build_bundle(other).bundle["entry"]}
    assert other_urls.isdisjoint(e["fullUrl"] for e in first.bundle["entry"])


def test_conditions_follow_the_assertion_and_negated_or_hypothetical_ones_are_left_out():
    conditions = resources_of(build_bundle(extraction(), source_text=NOTE).bundle, "Condition")
    by_text = {c["code"]["text"]: c for c in conditions}
    assert set(by_text) == {"HTN", "gout", "kidney stones"}

    def status(condition: dict[str, Any], field: str) -> str:
        return condition[field]["coding"][0]["code"]

    assert (status(by_text["HTN"], "clinicalStatus"), status(by_text["HTN"], "verificationStatus")) == (
        "active",
        "confirmed",
    )
    assert status(by_text["gout"], "verificationStatus") == "provisional"
    assert status(by_text["kidney stones"], "clinicalStatus") == "resolved"
    assert codes(by_text["HTN"]["code"], ICD10CM) == ["I10"]
    assert "coding" not in by_text["kidney stones"]["code"]
    for condition in conditions:
        assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"


def test_family_history_goes_to_family_member_history_not_conditions():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    histories = {
        h["relationship"]["coding"][0]["code"]: h for h in resources_of(bundle, "FamilyMemberHistory")
    }
    assert set(histories) == {"MTH", "FTH"}
    assert histories["MTH"]["condition"][0]["code"]["text"] == "breast cancer"
    assert codes(histories["FTH"]["condition"][0]["code"], ICD10CM) == ["E11.9"]
    assert all("breast cancer" not in c["code"]["text"] for c in resources_of(bundle, "Condition"))


def test_current_medications_are_statements_and_started_ones_are_requests():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    statements = {
        s["medicationCodeableConcept"]["text"]: s for s in resources_of(bundle, "MedicationStatement")
    }
    assert {name: s["status"] for name, s in statements.items()} == {
        "amlodipine": "active",
        "albuterol": "active",
        "ibuprofen": "stopped",
        "spironolactone": "on-hold",
    }
    albuterol = statements["albuterol"]["dosage"][0]
    assert albuterol["asNeededBoolean"] is True
    assert albuterol["timing"]["repeat"] == {"frequency": 1, "period": 4, "periodUnit": "h"}
    assert albuterol["doseAndRate"][0]["doseQuantity"] == {
        "value": 2,
        "unit": "{puff}",
        "system": UCUM,
        "code": "{puff}",
    }
    assert codes(albuterol["route"], "http://snomed.info/sct") == ["447694001"]

    (request,) = resources_of(bundle, "MedicationRequest")
    assert (request["status"], request["intent"]) == ("active", "order")
    assert codes(request["medicationCodeableConcept"], RXNORM) == ["29046"]
    repeat = request["dosageInstruction"][0]["timing"]["repeat"]
    assert repeat == {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
        "boundsDuration": {"value": 30, "unit": "d", "system": UCUM, "code": "d"},
    }


def test_vital_signs_follow_the_vital_signs_profile():
    observations = resources_of(build_bundle(extraction(), source_text=NOTE).bundle, "Observation")
    vitals = [o for o in observations if o["category"][0]["coding"][0]["code"] == "vital-signs"]
    assert len(vitals) == 6
    for vital in vitals:
        assert vital["status"] == "final"
        assert vital["effectiveDateTime"] == "2026-02-03"
        base, us_core = vital["meta"]["profile"]
        assert base == "http://hl7.org/fhir/StructureDefinition/vitalsigns"
        assert us_core.startswith("http://hl7.org/fhir/us/core/StructureDefinition/us-core-")
    by_code = {codes(o["code"], LOINC)[-1]: o for o in vitals}
    assert set(by_code) == {"85354-9", "8867-4", "8310-5", "2708-6", "29463-7", "39156-5"}

    panel = by_code["85354-9"]
    assert "valueQuantity" not in panel
    assert {codes(c["code"], LOINC)[0]: c["valueQuantity"] for c in panel["component"]} == {
        "8480-6": {"value": 148, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        "8462-4": {"value": 92, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
    }
    assert codes(by_code["2708-6"]["code"], LOINC) == ["59408-5", "2708-6"]
    assert by_code["29463-7"]["valueQuantity"] == {
        "value": 204,
        "unit": "[lb_av]",
        "system": UCUM,
        "code": "[lb_av]",
    }
    assert by_code["8310-5"]["valueQuantity"]["code"] == "[degF]"


def test_labs_are_laboratory_observations_with_interpretation_and_range():
    observations = resources_of(build_bundle(extraction(), source_text=NOTE).bundle, "Observation")
    labs = {
        o["code"]["text"]: o for o in observations if o["category"][0]["coding"][0]["code"] == "laboratory"
    }
    assert set(labs) == {"HbA1c", "potassium"}
    hba1c = labs["HbA1c"]
    assert codes(hba1c["code"], LOINC) == ["4548-4"]
    assert hba1c["valueQuantity"] == {"value": 7.8, "unit": "%", "system": UCUM, "code": "%"}
    assert hba1c["interpretation"][0]["coding"][0]["code"] == "H"
    assert hba1c["referenceRange"] == [{"text": "4.0-5.6"}]


def test_plan_orders_are_service_requests_inside_one_care_plan():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    requests = resources_of(bundle, "ServiceRequest")
    assert sorted(r["code"]["text"] for r in requests) == ["BMP in 2 weeks", "Refer to nephrology"]
    (plan,) = resources_of(bundle, "CarePlan")
    descriptions = [a["detail"]["description"] for a in plan["activity"] if "detail" in a]
    assert descriptions == ["Return in 4 weeks"]
    referenced = {a["reference"]["reference"] for a in plan["activity"] if "reference" in a}
    request_urls = {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    }
    assert referenced == request_urls


def test_the_source_note_and_provenance_trace_every_resource():
    result = build_bundle(extraction(), source_text=NOTE)
    bundle = result.bundle
    (document,) = resources_of(bundle, "DocumentReference")
    attachment = document["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]).decode() == NOTE
    sha1 = hashlib.sha1(NOTE.encode(), usedforsecurity=False).digest()
    assert attachment["hash"] == base64.b64encode(sha1).decode()
    assert document["masterIdentifier"]["value"] == hashlib.sha256(NOTE.encode()).hexdigest()

    (provenance,) = resources_of(bundle, "Provenance")
    document_url = next(
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    assert provenance["entity"] == [{"role": "source", "what": {"reference": document_url}}]
    assert provenance["recorded"] == "2026-02-03T00:00:00Z"
    targets = {t["reference"] for t in provenance["target"]}
    others = {
        e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] not in ("Provenance", "Device")
    }
    assert targets == others

    condition = resources_of(bundle, "Condition")[0]
    (extension,) = condition["extension"]
    start, end = (part["valueInteger"] for part in extension["extension"])
    assert NOTE[start:end] == "HTN"


def test_transaction_bundles_post_every_entry_without_ids():
    result = build_bundle(extraction(), bundle_type="transaction", source_text=NOTE)
    assert result.validation.valid, result.validation.errors
    assert result.bundle["type"] == "transaction"
    for entry in result.bundle["entry"]:
        assert entry["request"] == {"method": "POST", "url": entry["resource"]["resourceType"]}
        assert "id" not in entry["resource"]


def test_without_the_note_text_the_document_is_referenced_by_hash_only():
    result = build_bundle(extraction())
    assert result.validation.valid, result.validation.errors
    (document,) = resources_of(result.bundle, "DocumentReference")
    assert "data" not in document["content"][0]["attachment"]


def test_a_note_without_a_date_gives_observations_no_time_and_says_so():
    undated = extraction()
    undated["encounter"] = {"date": None}
    result = build_bundle(undated, source_text=NOTE)
    assert not result.validation.valid
    observations = len(resources_of(result.bundle, "Observation"))
    assert [e for e in result.validation.errors if "no date" in e] == result.validation.errors
    assert len(result.validation.errors) == observations > 0
    # without observations, an undated note is a valid bundle, with warnings
    for kind in ("vital_signs", "lab_results"):
        undated[kind] = []
    result = build_bundle(undated, source_text=NOTE)
    assert result.validation.valid, result.validation.errors
    assert any("no date" in warning for warning in result.validation.warnings)
    (provenance,) = resources_of(result.bundle, "Provenance")
    assert provenance["recorded"] == "1970-01-01T00:00:00Z"


def test_an_empty_extraction_gives_the_minimal_valid_bundle():
    result = build_bundle({}, source_text="Nothing to extract.")
    assert result.validation.valid, result.validation.errors
    assert result.resource_counts == {
        "Device": 1,
        "DocumentReference": 1,
        "Encounter": 1,
        "Patient": 1,
        "Provenance": 1,
    }


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="bundle_type"):
        build_bundle(extraction(), bundle_type="batch")  # type: ignore[arg-type]
    without_hash = extraction()
    del without_hash["source_sha256"]
    with pytest.raises(ValueError, match="source_sha256"):
        build_bundle(without_hash)


# ---- the validator catches what it must -------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["conditions"][0].update(code=icd("I10.99", "invented")), "I10.99"),
        (lambda e: e["medications"][0].update(rxnorm={"code": "999999999", "display": "x"}), "999999999"),
        (lambda e: e["lab_results"][0].update(loinc="0000-0"), "0000-0"),
        (lambda e: e["lab_results"][0].update(unit="furlongs"), "furlongs"),
        (lambda e: e["vital_signs"][4].update(unit="mm[Hg]"), "vital-signs profile"),
    ],
    ids=["icd10", "rxnorm", "loinc", "ucum", "vital-unit"],
)
def test_codes_and_units_outside_our_tables_make_the_bundle_invalid(change, message):
    bad = extraction()
    change(bad)
    result = build_bundle(bad, source_text=NOTE)
    assert not result.validation.valid
    assert any(message in error for error in result.validation.errors), result.validation.errors


def test_a_dangling_reference_is_an_error():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    resources_of(bundle, "Condition")[0]["subject"]["reference"] = (
        "urn:uuid:00000000-0000-0000-0000-000000000000"
    )
    errors, _ = validate_bundle(bundle)
    assert any("does not resolve" in error for error in errors)


def test_r4_structure_errors_are_reported():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    condition = resources_of(bundle, "Condition")[0]
    del condition["subject"]
    condition["severityScore"] = 3
    errors, _ = validate_bundle(bundle)
    structure = [error for error in errors if error.startswith("FHIR R4 structure")]
    assert any("subject" in error and "required" in error for error in structure)
    assert any("severityScore" in error for error in structure)


def test_a_blood_pressure_panel_without_a_component_is_an_error():
    bundle = build_bundle(extraction(), source_text=NOTE).bundle
    panel = next(o for o in resources_of(bundle, "Observation") if codes(o["code"], LOINC) == ["85354-9"])
    panel["component"] = panel["component"][:1]
    errors, _ = validate_bundle(bundle)
    assert any("8462-4" in error for error in errors)


def test_timing_codes_and_unknown_relationships():
    odd = {
        "source_sha256": hashlib.sha256(b"odd").hexdigest(),
        "medications": [
            {"text": "ceftriaxone 1 g IM once", "span": [0, 23], "name": "ceftriaxone",
             "rxnorm": {"code": "2193", "display": "ceftriaxone"}, "dose": {"value": 1, "unit": "g"},
             "route": "intramuscular", "frequency": {"code": "once"}, "as_needed": False,
             "status": "started"},
            {"text": "atorvastatin 40 mg at bedtime", "span": [24, 53], "name": "atorvastatin",
             "rxnorm": {"code": "83367", "display": "atorvastatin"}, "dose": {"value": 40, "unit": "mg"},
             "route": None, "as_needed": False, "status": "active",
             "frequency": {"code": "nightly", "frequency": 1, "period": 1, "period_unit": "d",
                           "when": ["HS"]}},
        ],
        "family_history": [
            {"text": "maternal aunt with migraine", "span": [54, 81], "relationship": "Maternal aunt",
             "condition": "migraine", "code": None},
            {"text": "family history of colon cancer", "span": [82, 112], "relationship": None,
             "condition": "colon cancer", "code": None},
            {"text": "wife has COVID-19", "span": [113, 130], "relationship": "wife",
             "condition": "COVID-19", "code": None},
        ],
    }  # fmt: skip
    result = build_bundle(odd)
    assert result.validation.valid, result.validation.errors
    (request,) = resources_of(result.bundle, "MedicationRequest")
    assert request["dosageInstruction"][0]["timing"]["repeat"] == {"count": 1}
    (statement,) = resources_of(result.bundle, "MedicationStatement")
    assert statement["dosage"][0]["timing"]["repeat"]["when"] == ["HS"]
    roles = sorted(
        h["relationship"]["coding"][0]["code"] for h in resources_of(result.bundle, "FamilyMemberHistory")
    )
    assert roles == ["FAMMEMB", "MAUNT", "WIFE"]


def test_an_impossible_encounter_date_is_left_out_with_a_warning():
    wrong = extraction()
    wrong["encounter"] = {"date": "2026-13-45"}
    for kind in ("vital_signs", "lab_results"):  # observations without a time are errors (tested above)
        wrong[kind] = []
    result = build_bundle(wrong, source_text=NOTE)
    assert result.validation.valid, result.validation.errors
    assert any("2026-13-45" in warning for warning in result.validation.warnings)
    (encounter,) = resources_of(result.bundle, "Encounter")
    assert "period" not in encounter


def test_the_note_type_sets_encounter_class_type_and_document_type():
    ed = extraction()
    ed["encounter"] = {"date": "2026-02-03", "note_type": "ed", "class": "EMER"}
    result = build_bundle(ed, source_text=NOTE)
    assert result.validation.valid, result.validation.errors
    (encounter,) = resources_of(result.bundle, "Encounter")
    assert encounter["class"]["code"] == "EMER"
    assert codes(encounter["type"][0], "http://snomed.info/sct") == ["4525004"]
    (document,) = resources_of(result.bundle, "DocumentReference")
    assert codes(document["type"], LOINC) == ["34111-5"]
    assert document["category"][0]["coding"][0]["code"] == "clinical-note"


def test_refused_orders_are_not_taken_and_an_allergen_order_is_a_detected_issue():
    data = extraction()
    data["medications_not_taken"] = [
        {"text": "statin", "span": [0, 6], "name": "atorvastatin", "rxnorm": None, "reason": "refused"},
        {"text": "metoprolol", "span": [7, 17], "name": "metoprolol", "reason": "other_person"},
    ]
    data["detected_issues"] = [
        {"kind": "drug-allergy", "medication": "amoxicillin", "allergy": "penicillin", "span": [20, 31],
         "detail": "amoxicillin ordered; documented penicillin allergy"},
    ]  # fmt: skip
    result = build_bundle(data, source_text=NOTE)
    assert result.validation.valid, result.validation.errors
    statements = [s for s in resources_of(result.bundle, "MedicationStatement") if s["status"] == "not-taken"]
    assert [s["medicationCodeableConcept"]["text"] for s in statements] == ["atorvastatin"]
    (issue,) = resources_of(result.bundle, "DetectedIssue")
    assert issue["severity"] == "high"
    assert "penicillin" in issue["detail"]
    allergies = {entry["fullUrl"]: entry["resource"] for entry in result.bundle["entry"]}
    implicated = [allergies[ref["reference"]] for ref in issue["implicated"]]
    assert [a["code"]["text"] for a in implicated] == ["penicillin"]
