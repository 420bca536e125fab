"""Optional LLM augmentation of the rule-based result, with the LLM's output checked against the note.

The model sees the note and the rule candidates and answers one JSON object (schema in the prompt). An
item it adds is kept only when its quoted `text` occurs verbatim in the note, a condition code only when
it is one of the table candidates for that text, a medication only when its name is in the RxNorm table,
and every attribute only when it is one of the contract's values. Anything else is dropped.
"""

from __future__ import annotations

import json
import re
from typing import Any

from medical_notes.extraction.conditions import CODE_CONFIDENCE_THRESHOLD
from medical_notes.extraction.pipeline import extraction_id
from medical_notes.extraction.terminology import ICD10CM_SYSTEM, RXNORM_SYSTEM, Terminology, normalize

ASSERTIONS = frozenset({"present", "absent", "possible", "historical", "hypothetical"})
ROUTES = frozenset(
    {
        "oral",
        "sublingual",
        "subcutaneous",
        "intramuscular",
        "intravenous",
        "inhaled",
        "nebulized",
        "topical",
        "transdermal",
        "intranasal",
        "ophthalmic",
        "otic",
        "rectal",
        "vaginal",
    }
)
STATUSES = frozenset({"active", "started", "changed", "stopped", "held"})
DOSE_UNITS = frozenset(
    {"mg", "g", "ug", "mL", "[iU]", "{puff}", "{tbl}", "{capsule}", "{drop}", "{spray}", "%"}
)
_FREQUENCIES: dict[str, tuple[int, float | None, str | None, str | None]] = {
    "once": (1, None, None, None),
    "daily": (1, 1, "d", None),
    "BID": (2, 1, "d", None),
    "TID": (3, 1, "d", None),
    "QID": (4, 1, "d", None),
    "qAM": (1, 1, "d", "MORN"),
    "qPM": (1, 1, "d", "EVE"),
    "nightly": (1, 1, "d", "HS"),
    "weekly": (1, 1, "wk", None),
    "every_other_day": (1, 2, "d", None),
    "monthly": (1, 1, "mo", None),
    "continuous": (1, 1, "h", None),
}
CANDIDATES_PER_CONDITION = 5


def candidates_for_prompt(result: dict[str, Any]) -> str:
    """What the rules found, compact, for the model to correct and complete."""
    compact = {
        "conditions": [
            {"text": c["text"], "assertion": c["assertion"], "code": (c["code"] or {}).get("code")}
            for c in result["conditions"]
        ],
        "medications": [
            {
                "text": m["text"],
                "name": m["name"],
                "route": m["route"],
                "frequency": (m["frequency"] or {}).get("code"),
                "status": m["status"],
            }
            for m in result["medications"]
        ],
    }
    return json.dumps(compact, ensure_ascii=False)


def parse_answer(answer: str) -> dict[str, Any]:
    """The JSON object in the model's answer (code fences and prose around it are tolerated)."""
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the model's answer holds no JSON object")
    value = json.loads(answer[start : end + 1])
    if not isinstance(value, dict):
        raise ValueError("the model's answer is not a JSON object")
    return value


def merge(
    result: dict[str, Any], answer: dict[str, Any], text: str, terms: Terminology, provider: str, model: str
) -> dict[str, Any]:
    """The rule result with the model's verified additions; provider, model and id updated."""
    merged = json.loads(json.dumps(result))
    # Every span the rules already read, as a record or one of its mentions, as a mention that is not the
    # patient's medication, or as an allergy: the model adds nothing there.
    covered = [
        tuple(span)
        for key in ("conditions", "medications", "medications_not_taken", "allergies")
        for item in merged.get(key, [])
        for span in [item["span"], *(m["span"] for m in item.get("mentions") or [])]
    ]
    # A drug the rules hold (a record, a refused order, another person's drug, an allergy) is not added
    # again: a second record would contradict the reconciled one, or order what the note refused.
    known_drugs = {
        code
        for key in ("medications", "medications_not_taken", "allergies")
        for item in merged.get(key, [])
        for code in [_code(item.get("rxnorm")), *(_code(c) for c in item.get("codings") or [])]
        if code
    }
    dropped = 0
    for item in _items(answer, "conditions"):
        condition = _condition(item, text, terms, covered)
        if condition is None:
            dropped += 1
            continue
        merged["conditions"].append(condition)
        covered.append(tuple(condition["span"]))
    for item in _items(answer, "medications"):
        span = _verbatim_span(text, item.get("text"), covered)
        if span is None:
            _fill_medication(merged["medications"], item)
            continue
        medication = _medication(item, text, span, terms)
        if medication is None:
            dropped += 1
            continue
        if medication["rxnorm"]["code"] in known_drugs:
            continue
        known_drugs.add(medication["rxnorm"]["code"])
        merged["medications"].append(medication)
        covered.append(tuple(span))
    merged["conditions"].sort(key=lambda c: c["span"][0])
    merged["medications"].sort(key=lambda m: m["span"][0])
    if dropped:
        merged["warnings"].append(
            f"{dropped} LLM item(s) dropped: evidence not verbatim in the note or not coded"
        )
    merged["provider"] = provider
    merged["model"] = model
    merged["extraction_id"] = extraction_id(merged["source_sha256"], provider, model)
    return merged


def _code(value: Any) -> str | None:
    return value.get("code") if isinstance(value, dict) else None


def _items(answer: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = answer.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _verbatim_span(text: str, evidence: Any, covered: list[tuple[int, int]]) -> list[int] | None:
    """The first occurrence of `evidence` in the note that no rule item already covers."""
    if not isinstance(evidence, str) or len(evidence.strip()) < 3:
        return None
    evidence = evidence.strip()
    for match in re.finditer(re.escape(evidence), text):
        if not any(match.start() < end and start < match.end() for start, end in covered):
            return [match.start(), match.end()]
    return None


def _condition(
    item: dict[str, Any], text: str, terms: Terminology, covered: list[tuple[int, int]]
) -> dict[str, Any] | None:
    span = _verbatim_span(text, item.get("text"), covered)
    assertion = item.get("assertion", "present")
    if span is None or assertion not in ASSERTIONS:
        return None
    evidence = text[span[0] : span[1]]
    candidates = terms.search_icd10cm(evidence, limit=CANDIDATES_PER_CONDITION)
    lexicon_code = terms.condition_terms.get(normalize(evidence))
    allowed = {c.code: c.score for c in candidates}
    if lexicon_code:
        allowed[lexicon_code] = 0.95
    proposed = item.get("code")
    code = None
    confidence = max(allowed.values(), default=0.0)
    if (
        isinstance(proposed, str)
        and proposed in allowed
        and allowed[proposed] >= CODE_CONFIDENCE_THRESHOLD - 0.2
    ):
        code = {"system": ICD10CM_SYSTEM, "code": proposed, "display": terms.icd10cm[proposed].description}
        confidence = max(allowed[proposed], CODE_CONFIDENCE_THRESHOLD)
    return {
        "text": evidence,
        "span": span,
        "code": code,
        "candidates": [c.as_dict() for c in candidates],
        "assertion": assertion,
        "confidence": round(confidence, 3),
        "source": "llm",
    }


def _medication(
    item: dict[str, Any], text: str, span: list[int], terms: Terminology
) -> dict[str, Any] | None:
    name = item.get("name")
    rxcui = terms.drug_names.get(normalize(name)) if isinstance(name, str) else None
    if rxcui is None:
        return None
    ingredient = terms.ingredients[rxcui]
    frequency = _frequency(item.get("frequency"))
    return {
        "text": text[span[0] : span[1]],
        "span": span,
        "name": ingredient.name,
        "rxnorm": {"system": RXNORM_SYSTEM, "code": rxcui, "display": ingredient.name},
        "codings": [],
        "dose": _dose(item.get("dose")),
        "route": item.get("route") if item.get("route") in ROUTES else None,
        "frequency": frequency,
        "as_needed": item.get("as_needed") is True,
        "duration": None,
        "status": item.get("status") if item.get("status") in STATUSES else "active",
        "mentions": [{"span": span, "text": text[span[0] : span[1]], "status": None}],
        "source": "llm",
    }


def _fill_medication(medications: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """An item about a medication the rules found: fill the attributes the rules left empty."""
    evidence = item.get("text")
    if not isinstance(evidence, str):
        return
    evidence = evidence.strip()
    for medication in medications:
        if evidence and (evidence in medication["text"] or medication["text"] in evidence):
            if medication["route"] is None and item.get("route") in ROUTES:
                medication["route"] = item["route"]
            if medication["frequency"] is None:
                medication["frequency"] = _frequency(item.get("frequency"))
            if medication["dose"] is None:
                medication["dose"] = _dose(item.get("dose"))
            return


def _frequency(code: Any) -> dict[str, Any] | None:
    if not isinstance(code, str):
        return None
    hours = re.fullmatch(r"q(\d{1,2})h", code)
    if hours:
        return {"code": code, "frequency": 1, "period": int(hours.group(1)), "period_unit": "h"}
    if code not in _FREQUENCIES:
        return None
    count, period, unit, when = _FREQUENCIES[code]
    value: dict[str, Any] = {"code": code, "frequency": count, "period": period, "period_unit": unit}
    if code == "once":
        value["count"] = 1
    if when:
        value["when"] = [when]
    return value


def _dose(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    number, unit = value.get("value"), value.get("unit")
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or unit not in DOSE_UNITS
        or number <= 0
    ):
        return None
    return {"value": number, "unit": unit}
