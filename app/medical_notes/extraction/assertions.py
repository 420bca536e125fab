"""Assertion status of a finding: present, absent, possible, historical, hypothetical or family.

The approach is that of NegEx and its successor ConText (Chapman et al., "A simple algorithm for
identifying negated findings and diseases in discharge summaries", J Biomed Inform 2001; Harkema et al.,
"ConText: an algorithm for determining negation, experiencer, and temporal status from clinical
reports", J Biomed Inform 2009): trigger phrases that look forward or backward from the finding, within
the sentence, until a termination term ends their scope. The trigger lists below are our own, written
for outpatient SOAP notes, not copies of the published lexicons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medical_notes.extraction.text import NoteLayout

ABSENT = "absent"
POSSIBLE = "possible"
HISTORICAL = "historical"
HYPOTHETICAL = "hypothetical"
FAMILY = "family"
PRESENT = "present"

# Trigger phrases that apply to findings AFTER them in the sentence.
_PRE_TRIGGERS: dict[str, tuple[str, ...]] = {
    ABSENT: (
        "no",
        "not",
        "denies",
        "denied",
        "denying",
        "deny",
        "without",
        "negative for",
        "neg for",
        "free of",
        "absence of",
        "no evidence of",
        "no signs of",
        "no sign of",
        "no history of",
        "no hx of",
        "no h/o",
        "no known",
        "never had",
        "nor",
        "no complaints of",
        "does not have",
        "did not have",
        "doesn't have",
        "has not had",
        "no further",
        "resolution of",
        "ruled out",
        "non",
        "never",
        "never a",
        "no longer",
    ),
    POSSIBLE: (
        "possible",
        "possibly",
        "probable",
        "probably",
        "suspected",
        "suspect",
        "suspicion for",
        "suspicion of",
        "concern for",
        "concerning for",
        "question of",
        "questionable",
        "rule out",
        "r/o",
        "ro",
        "consider",
        "considered",
        "differential includes",
        "cannot exclude",
        "can't exclude",
        "cannot rule out",
        "may have",
        "might have",
        "could be",
        "presumed",
        "likely",
        "evaluate for",
        "eval for",
        "workup for",
        "work-up for",
        "?",
    ),
    HISTORICAL: (
        "history of",
        "hx of",
        "h/o",
        "hx",
        "past history of",
        "previous",
        "previously",
        "prior",
        "status post",
        "s/p",
        "remote",
        "childhood",
        "resolved",
    ),
    HYPOTHETICAL: (
        "if",
        "should",
        "in case of",
        "return if",
        "call if",
        "watch for",
        "monitor for",
        "risk of",
        "risk for",
        "at risk for",
        "to prevent",
        "prevention of",
        "signs of",
        "symptoms of",
        "precautions",
        "warning signs",
        "unless",
        "prophylaxis",
    ),
}

# Trigger phrases that apply to findings BEFORE them in the sentence.
_POST_TRIGGERS: dict[str, tuple[str, ...]] = {
    ABSENT: (
        "ruled out",
        "was ruled out",
        "is ruled out",
        "negative",
        "was negative",
        "is absent",
        "not present",
        "not seen",
        "denied",
        "resolved",
        "has resolved",
        "have resolved",
        "free",
        "unlikely",
        "not suspected",
        "not likely",
        "not considered",
        "not found",
        "excluded",
        "was excluded",
        "is excluded",
        "absent",
    ),
    POSSIBLE: ("suspected", "is possible", "not excluded", "considered", "?", "vs", "versus", "questionable"),
    HISTORICAL: ("in the past", "as a child", "as a teenager", "years ago"),
    HYPOTHETICAL: (
        "develops",
        "develop",
        "occurs",
        "occur",
        "worsens",
        "recurs",
        "returns",
        "risk",
        "risks",
        "prevention",
        "prophylaxis",
        "precautions",
        "symptoms",
    ),
}

# Words that end a trigger's scope inside a sentence.
_TERMINATORS = (
    "but",
    "however",
    "although",
    "though",
    "except",
    "apart from",
    "aside from",
    "which",
    "who",
    "since",
    "because",
    "now",
    "presents",
    "presented",
    "reports",
    "complains",
    "has",
    "with",
    "is",
    "are",
    "on",
    "continue",
    "start",
)
_HARD_STOPS = re.compile(r"\s[-—\u2013]\s|:|\(|\)|\n\s*\n")
_POST_STOPS = re.compile(r":|\(|\)|\n\s*\n|,")

PRE_WINDOW_WORDS = 12
_ROS_MINUS = re.compile(r"\(\s*-\s*\)\s*$|\bneg(?:ative)?\s*:\s*$", re.I)
COLON_NEGATIVE = re.compile(r"^\s*[:=-]\s*(?:negative|neg|absent|none|no|denied|denies)\b", re.I)
# The year or age after a finding in parentheses or with "in", as in "pneumonia in 2022" or "(2015)".
_PAST_DATE = re.compile(r"^\s*(?:\(\s*(?:19|20)\d\d\s*\)|in\s+(?:19|20)\d\d\b|\((?:19|20)\d\d\))")


def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    alternatives = "|".join(
        re.escape(p) if not p[-1].isalnum() else rf"(?<![\w/]){re.escape(p)}(?![\w/])" for p in ordered
    )
    return re.compile(alternatives, re.IGNORECASE)


_PRE = {kind: _phrase_pattern(phrases) for kind, phrases in _PRE_TRIGGERS.items()}
_POST = {kind: _phrase_pattern(phrases) for kind, phrases in _POST_TRIGGERS.items()}
_TERMINATOR = _phrase_pattern(_TERMINATORS)
_PRIORITY = (ABSENT, HYPOTHETICAL, POSSIBLE, HISTORICAL)


@dataclass(frozen=True)
class AssertionResult:
    status: str
    trigger: str | None


def assert_finding(layout: NoteLayout, start: int, end: int) -> AssertionResult:
    """The status of the finding at text[start:end] from its sentence and its section."""
    text = layout.text
    segment = layout.segment_at(start)
    before = text[segment.start : start]
    after = text[end : segment.end]
    # Scope before the finding: from the last hard stop or terminator, at most PRE_WINDOW_WORDS words.
    if _ROS_MINUS.search(before):
        return AssertionResult(ABSENT, "(-)")
    cut = 0
    for match in _HARD_STOPS.finditer(before):
        if match.group(0) == ":" and _PRE[ABSENT].search(
            before[max(0, match.start() - 20) : match.start()] + " "
        ):
            continue  # "Denies: fever, chills" keeps its trigger
        cut = match.end()
    for match in _TERMINATOR.finditer(before, cut):
        cut = match.end()
    scope_before = before[cut:]
    words = scope_before.split()
    if len(words) > PRE_WINDOW_WORDS:
        scope_before = " ".join(words[-PRE_WINDOW_WORDS:])
    if COLON_NEGATIVE.match(after):
        return AssertionResult(ABSENT, after.strip()[:12])
    scope_after = after
    stop = _POST_STOPS.search(scope_after)
    if stop:
        scope_after = scope_after[: stop.start()]
    terminator = _TERMINATOR.search(scope_after)
    if terminator:
        scope_after = scope_after[: terminator.start()]
    scope_after = " ".join(scope_after.split()[:5])

    for kind in _PRIORITY:
        found = _PRE[kind].search(scope_before)
        if found:
            return AssertionResult(kind, found.group(0))
        found = _POST[kind].search(scope_after)
        if found:
            # "resolved" after a finding means it was there and is gone: historical, not absent
            status = (
                HISTORICAL
                if found.group(0).lower() in ("resolved", "has resolved", "have resolved")
                else kind
            )
            return AssertionResult(status, found.group(0))
    if _PAST_DATE.match(after):
        return AssertionResult(HISTORICAL, after.strip()[:12])
    section = layout.section_at(start)
    if section == "past_surgical_history":
        return AssertionResult(HISTORICAL, "section")
    if section == "family_history":
        return AssertionResult(FAMILY, "section")
    return AssertionResult(PRESENT, None)
