"""The extraction pipeline on the frozen blind split (issue #19) and the first split, and the scorer.

corpus/blind was written and annotated by people who never saw the rules, the lexicons or the other
splits, and frozen before the engine ran on it; rules are tuned on corpus/dev only. `make
eval-extraction` prints the numbers against the issue's targets. This test fails when a number drops
below its floor (FLOORS: what the engine measured when the split was frozen, so a change cannot make
things worse) and when a target that is met is missed again.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from extraction.evaluate import (
    BLIND_SPLIT,
    TARGETS,
    V1_SPLIT,
    V1_THRESHOLDS,
    ZERO_TARGETS,
    Note,
    Report,
    evaluate,
    load_split,
    occurrences,
    options,
)
from medical_notes.extraction.terminology import is_ucum_unit, loinc_lookup

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# Measured on the blind split (`make eval-extraction`, pipeline rules-2026.12.1); raise them as the
# engine improves. A metric at or above its issue #19 target (TARGETS) is held at the target.
FLOORS: dict[str, float] = {
    "conditions.f1": 0.844,
    "conditions.icd10_exact_accuracy": 0.88,
    "conditions.assertion_accuracy": 0.936,
    "medications.f1": 0.89,
    "medications.rxnorm_accuracy": 0.95,
    "medications.dose_accuracy": 0.927,
    "medications.status_accuracy": 0.836,
    "lab_results.recall": 0.879,
    "lab_results.unit_accuracy": 0.95,
    "allergies.precision": 0.73,
    "allergies.recall": 0.89,
    "fhir.validity_rate": 1.0,
    "fhir.us_core_rate": 1.0,
}
# Counts on the blind split that may not grow (issue #19's target for both is 0).
CEILINGS: dict[str, float] = {
    "safety.errors": 38,
    "medications.duplicates": 8,
}


@pytest.fixture(scope="module")
def blind() -> Report:
    return evaluate(BLIND_SPLIT)


def test_the_pipeline_holds_its_floors_on_the_blind_split(blind: Report):
    minimums = {key: min(FLOORS[key], TARGETS[key]) for key in TARGETS}
    metrics = blind.metrics()
    failed = blind.failures(minimums, zeros=())
    failed += [
        f"{key} = {metrics[key]:.0f} > {ceiling:.0f}"
        for key, ceiling in CEILINGS.items()
        if metrics[key] > ceiling
    ]
    assert failed == [], "\n" + blind.table()


def test_every_bundle_is_valid_r4(blind: Report):
    assert blind.fhir_invalid == []
    assert blind.fhir_valid == blind.notes >= 60


def test_the_pipeline_meets_issue_9s_thresholds_on_the_first_split():
    report = evaluate(V1_SPLIT)
    assert report.failures(V1_THRESHOLDS, zeros=("safety.errors",)) == [], "\n" + report.table()


# ---- the scorer itself ------------------------------------------------------------------------------


def _first(value: Any) -> Any:
    return options(value)[0]


def _span(note: Note, text: str) -> list[int]:
    start, end = occurrences(note.text, text)[0]
    return [start, end]


def oracle(notes: list[Note]):
    """An extractor that answers exactly the annotations (first acceptable value of each)."""
    by_text = {note.text: note for note in notes}

    def extract(text: str) -> dict[str, Any]:
        note = by_text[text]
        expected = note.expected
        conditions = [
            {
                "text": c["text"],
                "span": _span(note, c["text"]),
                "mentions": [{"span": _span(note, m), "text": m} for m in c.get("mentions", [])],
                "code": {"system": ICD10CM, "code": _first(c["icd10"]), "display": None},
                "assertion": _first(c["assertion"]),
            }
            for c in expected.get("conditions", [])
            if not c.get("optional")
        ]
        medications = []
        for m in expected.get("medications", []):
            if m.get("optional"):
                continue
            ingredients = m.get("ingredients") or []
            combination = len(ingredients) > 1
            code = _first(m["rxcui"])
            medications.append(
                {
                    "text": m["text"],
                    "span": _span(note, m["text"]),
                    "mentions": [{"span": _span(note, x), "text": x} for x in m.get("mentions", [])],
                    "name": _first(m["name"]),
                    "rxnorm": {"system": RXNORM, "code": code} if code else None,
                    "codings": [
                        {"system": RXNORM, "code": str(i["rxcui"]), "display": i["name"]}
                        for i in ingredients
                        if combination and i.get("rxcui")
                    ],
                    "dose": _first(m["dose"]),
                    "route": _first(m["route"]),
                    "frequency": {"code": _first(m["frequency"])} if _first(m["frequency"]) else None,
                    "as_needed": _first(m.get("as_needed", False)),
                    "status": _first(m.get("status", "active")),
                }
            )
        vitals = [
            {**v, "unit": v.get("unit", "mm[Hg]")}
            for v in expected.get("vital_signs", [])
            if not v.get("optional")
        ]
        labs = [
            {
                "name": lab["name"],
                "loinc": next((code for code in options(lab["loinc"]) if loinc_lookup(code)), None)
                or _first(lab["loinc"]),
                "value": lab["value"],
                "unit": next(
                    (unit for unit in options(lab.get("unit")) if unit and is_ucum_unit(unit)),
                    _first(lab.get("unit")),
                ),
                "flag": _first(lab.get("flag")),
            }
            for lab in expected.get("lab_results", [])
            if not lab.get("optional")
        ]
        allergies = [
            {
                "text": a["text"],
                "span": _span(note, a["text"]),
                "substance": a["text"],
                "reaction": a.get("reaction"),
                "verification": a.get("verification", "confirmed"),
            }
            for a in expected.get("allergies", [])
            if not a.get("optional")
        ]
        family = [
            {"relationship": _first(f["relationship"]), "condition": f["condition"], "text": f["condition"]}
            for f in expected.get("family_history", [])
        ]
        return {
            "conditions": conditions,
            "medications": medications,
            "vital_signs": vitals,
            "lab_results": labs,
            "allergies": allergies,
            "family_history": family,
            "encounter": {"class": _first(expected.get("encounter_class"))},
        }

    return extract


@pytest.mark.parametrize(("split", "minimum"), [(V1_SPLIT, 1.0), (BLIND_SPLIT, 0.98)], ids=["v1", "blind"])
def test_the_scorer_gives_full_marks_to_the_annotations_themselves(split, minimum):
    """On the blind split, as frozen, a few annotations cannot all be answered at once (one phrase
    that is two items' evidence, a combination whose writer gave neither code nor ingredient codes,
    a condition stated present inside a span also marked as a precaution): at most 2% and one safety
    item. The blind annotations are not edited to make the scorer look perfect."""
    notes = load_split(split)
    perfect = evaluate(split, oracle(notes), check_fhir=False)
    metrics = perfect.metrics()
    for key in (
        "conditions.f1", "conditions.assertion_accuracy", "conditions.icd10_exact_accuracy",
        "medications.f1", "medications.rxnorm_accuracy", "medications.dose_accuracy",
        "medications.status_accuracy", "vital_signs.f1", "lab_results.f1", "allergies.f1",
        "family_history.f1", "encounter.class_accuracy",
    ):  # fmt: skip
        assert metrics[key] >= minimum, (key, perfect.table())
    assert metrics["safety.errors"] <= (0 if minimum == 1.0 else 1)
    assert metrics["medications.duplicates"] == metrics["conditions.duplicates"] == 0


def test_the_scorer_counts_misses_duplicates_and_every_kind_of_safety_error():
    notes = load_split(BLIND_SPLIT)
    answer = oracle(notes)
    by_text = {note.text: note for note in notes}

    def damaged(text: str) -> dict[str, Any]:
        result = copy.deepcopy(answer(text))
        note = by_text[text]
        result["vital_signs"] = result["vital_signs"][1:]
        for medication in result["medications"]:
            medication["route"] = "rectal"
        result["medications"] += [dict(m) for m in result["medications"][:1]]  # a second record
        for condition in result["conditions"]:
            if condition["assertion"] == "absent":
                condition["assertion"] = "present"
        for item in note.expected["safety"]:  # every "not the patient's" mention emitted as the patient's
            span = _span(note, item["text"])
            if item["entity"] == "medication":
                result["medications"].append({"text": item["text"], "span": span, "status": "active"})
            elif item["entity"] == "allergy":
                result["allergies"].append({"text": item["text"], "span": span})
            else:
                result["conditions"].append({"text": item["text"], "span": span, "assertion": "present"})
        return result

    scored = evaluate(BLIND_SPLIT, damaged, check_fhir=False)
    metrics = scored.metrics()
    safety_items = sum(len(note.expected["safety"]) for note in notes)
    assert metrics["safety.errors"] >= safety_items
    assert {m.problem.rsplit("(", 1)[-1].rstrip(")") for m in scored.safety_errors} >= {
        "negated",
        "hypothetical",
        "family",
    }
    assert metrics["medications.duplicates"] >= sum(1 for n in notes if n.expected["medications"])
    assert metrics["vital_signs.f1"] < 1.0
    assert metrics["medications.route_accuracy"] < 0.1
    assert metrics["conditions.assertion_accuracy"] < 1.0
    failures = "\n".join(scored.failures())
    assert "safety.errors" in failures
    assert "medications.duplicates" in failures


def test_targets_and_zero_counts_are_the_issues():
    assert TARGETS["medications.status_accuracy"] == TARGETS["conditions.f1"] == 0.95
    assert TARGETS["allergies.precision"] == TARGETS["allergies.recall"] == 0.90
    assert set(ZERO_TARGETS) == {"safety.errors", "medications.duplicates"}
