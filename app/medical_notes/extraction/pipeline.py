"""The offline extraction pipeline: one note in, the structured result (issue #9's shape) out."""

from __future__ import annotations

import hashlib
from typing import Any

from medical_notes.extraction.assertions import ABSENT, FAMILY, HYPOTHETICAL
from medical_notes.extraction.conditions import (
    condition_output,
    find_condition_mentions,
    patient_conditions,
)
from medical_notes.extraction.context import (
    allergy_output,
    family_output,
    family_scopes,
    find_allergies,
    find_encounter,
    find_patient,
    find_plan,
    find_procedures,
)
from medical_notes.extraction.lexicon import tokenize
from medical_notes.extraction.measurements import find_labs, find_vitals
from medical_notes.extraction.medications import find_medication_mentions
from medical_notes.extraction.reconcile import reconcile
from medical_notes.extraction.terminology import Terminology, terminology
from medical_notes.extraction.text import NoteLayout

# Part of every extraction_id: a new version never serves results cached by an older pipeline.
PIPELINE_VERSION = "rules-2026.12.1"
OFFLINE_PROVIDER = "offline"
OFFLINE_MODEL = "rules"


def source_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def extraction_id(source_hash: str, provider: str = OFFLINE_PROVIDER, model: str = OFFLINE_MODEL) -> str:
    """Deterministic: the same note through the same pipeline (and model) gets the same id."""
    digest = hashlib.sha256(
        f"{PIPELINE_VERSION}\x1f{provider}\x1f{model}\x1f{source_hash}".encode()
    ).hexdigest()
    return f"ext-{digest[:32]}"


def extract_structured(text: str, terms: Terminology | None = None) -> dict[str, Any]:
    """Pure, synchronous and offline: the same text always gives the same result."""
    terms = terms or terminology()
    layout = NoteLayout(text)
    tokens = tokenize(text)
    warnings: list[str] = []

    vitals = find_vitals(text)
    vital_spans = [(v["span"][0], v["span"][1]) for v in vitals]

    allergies = find_allergies(layout)
    allergy_spans = [(a.start, a.end) for a in allergies]
    allergy_lines = [_allergy_line(layout, a.start) for a in allergies]

    medication_mentions = find_medication_mentions(layout, tokens, terms, allergy_spans + allergy_lines)
    reconciled = reconcile(
        medication_mentions, layout, terms, [(a.substance, (a.start, a.end)) for a in allergies]
    )
    medications = reconciled.medications
    warnings.extend(reconciled.warnings)
    # A problem list that a drug's sig ran into ("on Eliquis, hypothyroidism, obesity") keeps its problems.
    name_spans = [(m.start, m.name_end) for m in medication_mentions]
    sig_spans = [(m.name_end, m.block_end) for m in medication_mentions if m.block_end > m.name_end]
    labs = find_labs(text, terms, vital_spans + [(m.start, m.end) for m in medication_mentions])
    lab_spans = [(lab["span"][0], lab["span"][1]) for lab in labs]

    blocked = vital_spans + lab_spans + allergy_lines
    mentions = find_condition_mentions(layout, tokens, terms, blocked, sig_spans, name_spans)
    scopes = family_scopes(layout)
    family_history: list[dict[str, Any]] = []
    for mention in mentions:
        if any(start <= mention.start < end for start, end in scopes):
            # a risk or a hypothetical in a relative's sentence ("son's Advil - bleeding risk") is no one's
            conditional = mention.assertion in (ABSENT, HYPOTHETICAL)
            mention.assertion = FAMILY
            if not conditional:
                family_history.extend(family_output(layout, mention.start, mention.end, mention.code, terms))
    conditions = [condition_output(m, text, terms) for m in patient_conditions(mentions, text)]
    for condition in conditions:
        if condition["code"] is None:
            warnings.append(f"condition at {condition['span']}: no code above the confidence threshold")
    for medication in medications:
        if medication["rxnorm"] is None and not medication["codings"]:
            warnings.append(f"medication at {medication['span']}: not in the RxNorm table")

    source_hash = source_sha256(text)
    return {
        "extraction_id": extraction_id(source_hash),
        "source_sha256": source_hash,
        "pipeline_version": PIPELINE_VERSION,
        "terminology": terms.versions(),
        "provider": OFFLINE_PROVIDER,
        "model": OFFLINE_MODEL,
        "conditions": conditions,
        "medications": medications,
        "medications_not_taken": reconciled.not_taken,
        "detected_issues": reconciled.detected_issues,
        "vital_signs": vitals,
        "lab_results": labs,
        "allergies": [allergy_output(a, terms) for a in allergies],
        "procedures": find_procedures(layout),
        "family_history": family_history,
        "plan": find_plan(layout),
        "patient": find_patient(text),
        "encounter": find_encounter(text),
        "warnings": warnings,
    }


def _allergy_line(layout: NoteLayout, position: int) -> tuple[int, int]:
    """The allergy statement around an allergen: its reactions are not the patient's conditions."""
    start, end = layout.line_bounds(position)
    segment = layout.segment_at(position)
    return max(start, segment.start), min(end, segment.end)
