"""The offline extraction engine on small notes: each rule family and the guarantees of the result."""

from __future__ import annotations

import pytest

from medical_notes.extraction import extract_structured
from medical_notes.extraction.terminology import icd10_lookup, is_ucum_unit, terminology


def conditions(text: str) -> dict[str, tuple[str | None, str]]:
    result = extract_structured(text)
    return {c["text"]: ((c["code"] or {}).get("code"), c["assertion"]) for c in result["conditions"]}


@pytest.mark.parametrize(
    ("sentence", "finding", "assertion"),
    [
        ("Patient denies chest pain.", "chest pain", "absent"),
        ("No fever, chills, night sweats or cough.", "cough", "absent"),
        ("Negative for hemoptysis.", "hemoptysis", "absent"),
        ("Pneumonia not suspected.", "Pneumonia", "absent"),
        ("Possible OSA given snoring.", "OSA", "possible"),
        ("Rule out pneumonia.", "pneumonia", "possible"),
        ("History of pneumonia in 2019.", "pneumonia", "historical"),
        ("History of hypertension for 10 years.", "hypertension", "present"),  # chronic: still has it
        ("Return if fever develops.", "fever", "hypothetical"),
        ("Reports dyspnea on exertion.", "dyspnea on exertion", "present"),
        ("No chest pain but has palpitations.", "palpitations", "present"),
        ("Non-smoker.", "smoker", "absent"),
    ],
)
def test_assertions(sentence: str, finding: str, assertion: str) -> None:
    found = conditions(sentence)
    assert found[finding][1] == assertion


def test_family_mentions_never_become_the_patients_conditions() -> None:
    text = (
        "Mother had breast cancer; father with coronary artery disease. "
        "Brother, age 50, has type 2 diabetes.\n"
        "No family history of colon cancer. Patient has hypertension."
    )
    result = extract_structured(text)
    assert {c["text"] for c in result["conditions"]} == {"hypertension"}
    family = {(f["relationship"], f["condition"]) for f in result["family_history"]}
    assert family == {
        ("mother", "breast cancer"),
        ("father", "coronary artery disease"),
        ("brother", "type 2 diabetes"),
    }


def test_codes_prefer_billable_and_abbreviations() -> None:
    found = conditions("A/P:\n1. HTN\n2. T2DM\n3. CKD 3a\n4. COPD exacerbation\n5. HFrEF\n6. AFib\n7. GERD")
    assert {text: code for text, (code, _) in found.items()} == {
        "HTN": "I10",
        "T2DM": "E11.9",
        "CKD 3a": "N18.31",
        "COPD exacerbation": "J44.1",
        "HFrEF": "I50.22",
        "AFib": "I48.91",
        "GERD": "K21.9",
    }
    for code, _ in found.values():
        assert terminology().icd10cm[code].billable


def test_assessment_line_takes_the_most_specific_title() -> None:
    found = conditions("Assessment:\n- Type 1 diabetes mellitus with hypoglycemia, fair control.\n")
    assert found["Type 1 diabetes mellitus with hypoglycemia"] == ("E10.649", "present")
    found = conditions("Assessment: Elevated blood pressure without diagnosis of hypertension.")
    assert found == {"Elevated blood pressure without diagnosis of hypertension": ("R03.0", "present")}


def test_unknown_phrase_keeps_text_without_a_code() -> None:
    result = extract_structured("Assessment:\n1. Frobnication of the widget, chronic.")
    assert all(c["code"] is None or icd10_lookup(c["code"]["code"]) for c in result["conditions"])


@pytest.mark.parametrize(
    ("sig", "expected"),
    [
        ("metformin 500 mg PO BID", ({"value": 500, "unit": "mg"}, "oral", "BID", False)),
        (
            "albuterol 90 mcg 2 puffs q4-6h PRN wheeze",
            ({"value": 2, "unit": "{puff}"}, "inhaled", "q4h", True),
        ),
        (
            "insulin glargine 22 units subcutaneously at bedtime",
            ({"value": 22, "unit": "[iU]"}, "subcutaneous", "nightly", False),
        ),
        ("levothyroxine 88 mcg every morning", ({"value": 88, "unit": "ug"}, None, "qAM", False)),
        ("semaglutide 0.5 mg SC weekly", ({"value": 0.5, "unit": "mg"}, "subcutaneous", "weekly", False)),
        (
            "nitroglycerin 0.4 mg SL as needed for chest pain",
            ({"value": 0.4, "unit": "mg"}, "sublingual", None, True),
        ),
        (
            "amoxicillin 400 mg/5 mL, 720 mg by mouth twice daily",
            ({"value": 720, "unit": "mg"}, "oral", "BID", False),
        ),
        ("potassium chloride 20 mEq PO daily", ({"value": 20, "unit": "meq"}, "oral", "daily", False)),
    ],
)
def test_medication_sigs(sig: str, expected: tuple) -> None:
    medication = extract_structured(f"Meds: {sig}.")["medications"][0]
    dose, route, frequency, as_needed = expected
    assert medication["dose"] == dose
    assert medication["route"] == route
    assert (medication["frequency"] or {}).get("code") == frequency
    assert medication["as_needed"] is as_needed
    assert medication["rxnorm"]["code"] in terminology().ingredients
    if medication["dose"]:
        assert is_ucum_unit(medication["dose"]["unit"])


@pytest.mark.parametrize(
    ("sentence", "status"),
    [
        ("Start lisinopril 10 mg daily.", "started"),
        ("Increase lisinopril to 20 mg daily.", "changed"),
        ("Stop lisinopril.", "stopped"),
        ("Hold lisinopril tonight.", "held"),
        ("Continue lisinopril 10 mg daily.", "active"),
        ("She stopped the lisinopril last week.", "stopped"),
        ("Lisinopril 10 mg orally once daily (new)", "started"),
    ],
)
def test_medication_status(sentence: str, status: str) -> None:
    assert extract_structured(sentence)["medications"][0]["status"] == status


def test_allergies_are_not_medications_or_conditions() -> None:
    result = extract_structured(
        "Allergies: penicillin (rash), codeine - vomiting.\nTaking aspirin 81 mg daily."
    )
    assert [(a["substance"], a["reaction"]) for a in result["allergies"]] == [
        ("penicillin", "rash"),
        ("codeine", "vomiting"),
    ]
    assert [m["name"] for m in result["medications"]] == ["aspirin"]
    assert result["conditions"] == []


def test_vitals_in_units_as_written() -> None:
    text = (
        "Vitals: BP 142/88 mmHg | HR 78 | RR 16 | T 98.4 °F | SpO2 97% RA | Wt 212 lb | Ht 5 ft 10 in "
        "| BMI 30.4"
    )
    vitals = {v["kind"]: v for v in extract_structured(text)["vital_signs"]}
    assert (vitals["blood_pressure"]["systolic"], vitals["blood_pressure"]["diastolic"]) == (142, 88)
    assert [c["loinc"] for c in vitals["blood_pressure"]["components"]] == ["8480-6", "8462-4"]
    assert (vitals["temperature"]["value"], vitals["temperature"]["unit"]) == (98.4, "[degF]")
    assert (vitals["weight"]["value"], vitals["weight"]["unit"]) == (212, "[lb_av]")
    assert (vitals["height"]["value"], vitals["height"]["unit"]) == (70, "[in_i]")
    assert vitals["oxygen_saturation"]["loinc"] == "59408-5"
    for vital in vitals.values():
        assert is_ucum_unit(vital["unit"])
    celsius = extract_structured("T 37.2 C, weight 70 kg")["vital_signs"]
    assert [(v["kind"], v["unit"]) for v in celsius] == [("temperature", "Cel"), ("weight", "kg")]


def test_labs_with_ranges_and_flags() -> None:
    text = (
        "Labs: HbA1c 7.8 % (ref 4.0-5.6) H, fasting glucose 156 mg/dL, K 5.6 mEq/L (3.5-5.0), "
        "Hgb 11.2 g/dL (L), eGFR 52 mL/min/1.73m2, UACR 38 mg/g (<30), TSH 2.1 mIU/L, INR 2.4.\n"
        "Recheck TSH in 6 weeks. Hold if potassium above 5.0."
    )
    labs = [
        (lab["name"], lab["loinc"], lab["value"], lab["unit"], lab["flag"])
        for lab in extract_structured(text)["lab_results"]
    ]
    assert labs == [
        ("HbA1c", "4548-4", 7.8, "%", "H"),
        ("glucose", "1558-6", 156, "mg/dL", None),
        ("potassium", "2823-3", 5.6, "meq/L", "H"),
        ("hemoglobin", "718-7", 11.2, "g/dL", "L"),
        ("eGFR", "98979-8", 52, "mL/min/{1.73_m2}", None),
        ("UACR", "9318-7", 38, "mg/g", "H"),
        ("TSH", "3016-3", 2.1, "m[IU]/L", None),
        ("INR", "6301-6", 2.4, "{INR}", None),  # a ratio: UCUM annotation unit by default
    ]


def test_every_span_is_the_evidence_and_the_result_is_deterministic() -> None:
    text = (
        "58 yo F. Date: 2026-03-12.\nS: T2DM, HTN. Denies CP.\nMeds: metformin 500 mg PO BID.\n"
        "O: BP 150/90, HR 80. HbA1c 8.1 %.\nA/P: Start empagliflozin 10 mg daily. Refer to ophthalmology.\n"
    )
    first = extract_structured(text)
    assert extract_structured(text) == first
    assert first["patient"] == {"age": 58, "age_unit": "a", "sex": "female", "span": [0, 5]}
    assert first["encounter"]["date"] == "2026-03-12"
    assert {item["kind"] for item in first["plan"]} >= {"referral", "medication"}
    for key in ("conditions", "medications", "allergies", "family_history", "plan"):
        for item in first[key]:
            start, end = item["span"]
            assert text[start:end] == item["text"]
    for key in ("vital_signs", "lab_results"):
        for item in first[key]:
            start, end = item["span"]
            assert 0 <= start < end <= len(text)


def test_list_and_review_of_systems_layouts() -> None:
    text = (
        "ALLERGIES:\n- penicillin (hives)\n- sulfa drugs - rash\n\n"
        "ROS: (-) fever, (-) chills. Denies: nausea, vomiting. Cough: negative.\n"
        "Family history notable for colon cancer in her father. Father deceased at 70 from MI.\n"
        "Declined statin therapy; not taking aspirin."
    )
    result = extract_structured(text)
    assert [(a["substance"], a["reaction"]) for a in result["allergies"]] == [
        ("penicillin", "hives"),
        ("sulfa drugs", "rash"),
    ]
    assert {c["text"]: c["assertion"] for c in result["conditions"]} == {
        "fever": "absent",
        "chills": "absent",
        "nausea, vomiting": "absent",  # one concept, R11.2 (as "nausea/vomiting")
        "Cough": "absent",
    }
    assert {(f["relationship"], f["condition"]) for f in result["family_history"]} == {
        ("father", "colon cancer"),
        ("father", "MI"),
    }
    assert result["medications"] == []


def test_relatives_of_each_condition_and_allergy_statements() -> None:
    text = (
        "Her mother had a stroke and her father has COPD. Family history is positive for diabetes in mother "
        "and maternal grandmother.\nSeasonal allergies, takes loratadine 10 mg daily. "
        "Allergy list: codeine -> nausea; PCN (hives)."
    )
    result = extract_structured(text)
    assert [(f["relationship"], f["condition"]) for f in result["family_history"]] == [
        ("mother", "stroke"),
        ("father", "COPD"),
        ("mother", "diabetes"),
        ("maternal grandmother", "diabetes"),
    ]
    assert [(a["substance"], a["reaction"]) for a in result["allergies"]] == [
        ("codeine", "nausea"),
        ("PCN", "hives"),
    ]
    assert [m["name"] for m in result["medications"]] == ["loratadine"]
    assert result["conditions"] == []
