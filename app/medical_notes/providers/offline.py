"""The offline provider: extractive answers built from the note or guideline text itself.

No network and no model: every sentence it returns is quoted from its input, and each answer says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medical_notes.config import Settings
from medical_notes.providers.base import Passage
from medical_notes.providers.clinical_text import (
    ASSESSMENT,
    BM25,
    MEDICATIONS,
    OBJECTIVE,
    PLAN,
    SUBJECTIVE,
    ParsedNote,
    Unit,
    centrality_scores,
    has_dose,
    is_action,
    logical_lines,
    parse_note,
    query_terms,
    section_vocabulary,
    sections_asked_for,
    split_sentences,
    tokenize,
)

SUMMARY_DISCLAIMER = (
    "(Offline extractive summary: sentences quoted from the note; no language model was used.)"
)
QUERY_DISCLAIMER = (
    "(Offline extractive answer: the note's sentences that best match the question; "
    "no language model was used.)"
)
GUIDELINE_DISCLAIMER = (
    "(Offline extractive answer: sentences quoted from the retrieved guideline passages; "
    "no language model was used.)"
)
NOT_FOUND_IN_NOTE = "Not found in the note: no sentence in it matches the question."
EMPTY_NOTE = "The note has no text to summarise."

_MAX_FINDINGS = 3
_MAX_ASSESSMENT = 3
_MAX_PLAN = 5
_MAX_MEDICATIONS = 12
_MAX_UNSTRUCTURED = 5
_MAX_NOTE_ANSWERS = 3
_MAX_SECTION_ANSWERS = 8
_MAX_GUIDELINE_SENTENCES = 4
_RELATIVE_CUTOFF = 0.4  # answers scoring under this share of the best one are noise
_MEASUREMENT_PREFERENCE = 1.25  # questions about a note mostly want a value
_PASSAGE_SCORE_WEIGHT = 0.5  # how much retrieval similarity counts next to word overlap


_BULLET = re.compile(r"^(?:[-*\u2022+]|\d{1,2}[.)])\s+")


def _bullets(units: Sequence[Unit]) -> list[str]:
    return [f"- {unit.text}" for unit in units]


def _findings(note: ParsedNote) -> list[Unit]:
    """Vitals and labs first, then other objective lines that carry measurements."""
    objective = note.section(OBJECTIVE)
    measured = [unit for unit in objective if any(char.isdigit() for char in unit.text)]
    preferred = [unit for unit in measured if unit.text.lower().startswith(("vital", "lab", "bp", "blood"))]
    others = [unit for unit in measured if unit not in preferred]
    chosen = (preferred + others)[:_MAX_FINDINGS]
    return sorted(chosen, key=lambda unit: unit.position)


def _medications(note: ParsedNote, plan: Sequence[Unit]) -> list[Unit]:
    listed = note.section(MEDICATIONS)
    if listed:
        return listed[:_MAX_MEDICATIONS]
    # No medication list: fall back to sentences that mention a dose, outside what is already shown
    shown = {unit.position for unit in plan}
    return [unit for unit in note.units if has_dose(unit.text) and unit.position not in shown][
        :_MAX_MEDICATIONS
    ]


def _is_plan_item(unit: Unit) -> bool:
    return is_action(unit.text) or has_dose(unit.text)


def summarize_text(text: str) -> str:
    note = parse_note(text)
    if not note.units:
        return EMPTY_NOTE
    lines: list[str] = []
    subjective = note.section(SUBJECTIVE)
    chief_complaint = note.chief_complaint or (subjective[0].text if subjective else None)

    assessment = note.section(ASSESSMENT)
    plan = note.section(PLAN)
    if not plan and assessment:
        # A combined "Assessment and Plan" section: actions are the plan, the rest the assessment
        plan = [unit for unit in assessment if _is_plan_item(unit)]
        assessment = [unit for unit in assessment if not _is_plan_item(unit)]

    if not note.structured or not (chief_complaint or assessment or plan):
        scores = centrality_scores(note.units)
        ranked = sorted(note.units, key=lambda unit: (-scores[unit.position], unit.position))
        top = sorted(ranked[:_MAX_UNSTRUCTURED], key=lambda unit: unit.position)
        lines.append("Key sentences (the note has no SOAP sections):")
        lines.extend(_bullets(top))
        medications = [unit for unit in note.units if has_dose(unit.text) and unit not in top]
        if medications:
            lines.append("Medications mentioned:")
            lines.extend(_bullets(medications[:_MAX_MEDICATIONS]))
        lines.append(SUMMARY_DISCLAIMER)
        return "\n".join(lines)

    if chief_complaint:
        lines.append(f"Chief complaint: {chief_complaint}")
    findings = _findings(note)
    if findings:
        lines.append("Key findings:")
        lines.extend(_bullets(findings))
    if assessment:
        lines.append("Assessment:")
        lines.extend(_bullets(assessment[:_MAX_ASSESSMENT]))
    if plan:
        lines.append("Plan:")
        lines.extend(_bullets(plan[:_MAX_PLAN]))
    medications = _medications(note, plan[:_MAX_PLAN])
    if medications:
        lines.append("Medications:")
        lines.extend(_bullets(medications))
    lines.append(SUMMARY_DISCLAIMER)
    return "\n".join(lines)


def _not_found() -> str:
    return f"{NOT_FOUND_IN_NOTE}\n{QUERY_DISCLAIMER}"


def _note_answer(units: Sequence[Unit]) -> str:
    lines = ["From the note:"]
    lines.extend(f"- [{unit.section}] {unit.text}" for unit in units)
    lines.append(QUERY_DISCLAIMER)
    return "\n".join(lines)


def _rank(units: Sequence[Unit], terms: dict[str, float]) -> list[Unit]:
    index = BM25([unit.tokens for unit in units], b=0.3)
    if not any(index.contains(term) for term in terms):
        return []
    scores = [
        score * (_MEASUREMENT_PREFERENCE if any(char.isdigit() for char in unit.text) else 1.0)
        for score, unit in zip(index.scores(terms), units, strict=True)
    ]
    best = max(scores)
    ranked = sorted(
        (i for i in range(len(units)) if scores[i] > 0 and scores[i] >= best * _RELATIVE_CUTOFF),
        key=lambda i: (-scores[i], i),
    )
    return [units[i] for i in ranked[:_MAX_NOTE_ANSWERS]]


def query_note_text(text: str, query: str) -> str:
    note = parse_note(text)
    terms = query_terms(query)
    if not note.units or not terms:
        return _not_found()
    asked = [section for section in sections_asked_for(terms) if note.section(section)]
    if asked:
        in_sections = [unit for unit in note.units if unit.section in asked]
        vocabulary = section_vocabulary()
        content_terms = {term: weight for term, weight in terms.items() if term not in vocabulary}
        if not any(weight == 1.0 for weight in content_terms.values()):
            return _note_answer(in_sections[:_MAX_SECTION_ANSWERS])
        ranked = _rank(in_sections, content_terms)
        if ranked:
            return _note_answer(ranked)
    ranked = _rank(note.units, terms)
    return _note_answer(ranked) if ranked else _not_found()


def _passage_sentences(passage: Passage) -> list[str]:
    sentences = []
    for line in logical_lines(passage.text):
        if line.startswith("#"):
            continue
        sentences.extend(
            # A sentence that only introduces a list or table says nothing when quoted alone
            sentence
            for sentence in split_sentences(_BULLET.sub("", line).replace("**", ""))
            if not sentence.endswith(":")
        )
    return sentences


def answer_from_passages(question: str, passages: Sequence[Passage]) -> str:
    candidates: list[tuple[Passage, str]] = [
        (passage, sentence) for passage in passages for sentence in _passage_sentences(passage)
    ]
    if not candidates:
        return (
            "No guideline passage was retrieved for this question, so there is nothing to quote.\n"
            f"{GUIDELINE_DISCLAIMER}"
        )
    terms = query_terms(question)
    index = BM25([tokenize(sentence) for _, sentence in candidates])
    relevance = index.scores(terms) if terms else [0.0] * len(candidates)
    best_relevance = max(relevance)

    if best_relevance <= 0.0:
        # Retrieval judged the passages relevant without shared words: quote the best one's opening
        top = max(passages, key=lambda passage: passage.score)
        lines = [
            "No sentence of the retrieved guideline passages shares words with the question; "
            "the closest passage says:"
        ]
        lines.extend(f"- {sentence} [{top.id}]" for sentence in _passage_sentences(top)[:2])
        lines.append(GUIDELINE_DISCLAIMER)
        return "\n".join(lines)

    best_passage_score = max(passage.score for passage in passages)
    passage_scale = best_passage_score if best_passage_score > 0 else 1.0
    combined = [
        score / best_relevance + _PASSAGE_SCORE_WEIGHT * passage.score / passage_scale
        for score, (passage, _) in zip(relevance, candidates, strict=True)
    ]
    lines = ["From the guidelines:"]
    quoted: set[str] = set()
    for i in sorted(range(len(candidates)), key=lambda i: (-combined[i], i)):
        passage, sentence = candidates[i]
        key = " ".join(sentence.lower().split())
        # Overlapping chunks repeat sentences; quote each once, citing the better-ranked passage
        if relevance[i] < best_relevance * _RELATIVE_CUTOFF or key in quoted:
            continue
        quoted.add(key)
        lines.append(f"- {sentence} [{passage.id}]")
        if len(quoted) == _MAX_GUIDELINE_SENTENCES:
            break
    lines.append(GUIDELINE_DISCLAIMER)
    return "\n".join(lines)


class OfflineProvider:
    """Deterministic extractive provider; the default, and the one used without network or key."""

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm_model

    async def summarize(self, note: str) -> str:
        return summarize_text(note)

    async def query_note(self, note: str, query: str) -> str:
        return query_note_text(note, query)

    async def answer_question(self, question: str, passages: Sequence[Passage]) -> str:
        return answer_from_passages(question, passages)

    async def aclose(self) -> None:
        return None
