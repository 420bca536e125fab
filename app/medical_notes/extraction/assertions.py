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
from functools import lru_cache

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
        "w/o",
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
        "+/-",
        "vs",
        "versus",
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
        "signs",
        "s/sx",
        "warning",
        "warnings",
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
_NON_ATTACHED = re.compile(r"(?<![\w/])non-?$", re.I)
_ROS_MINUS = re.compile(r"\(\s*-\s*\)\s*$|\bneg(?:ative)?\s*:\s*$", re.I)
# "X: none", "X - no." ("X - no anticoagulation" answers something else)
COLON_NEGATIVE = re.compile(
    r"^\s*[:=-]\s*(?:negative|neg|absent|none|no(?=[ \t]*(?:[.,;()]|$)|[ \t]+"
    r"(?:(?:current|new|active|clinical|radiographic)[ \t]+)?"
    r"(?:sx|symptoms?|signs?|evidence|findings|features|concern|recurrence)\b)|never|nil|denied|denies)\b",
    re.I | re.M,
)
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


# A cue right after the finding, behind a comma, dash, colon or question mark: "rash - resolved",
# "pneumonia, unlikely", "CHF? no", "appendicitis, possible", "PE considered - CTA negative".
_END = r"(?=[ \t]+[-\u2014\u2013]|[ \t]*(?:[.,;)]|$|\n[ \t]*(?:$|[-*\u2022#\d]|[A-Za-z][\w /]{0,30}:)))"
_IMMEDIATE_POST = re.compile(
    # a site or the rest of a slash list may stand between: "gout in knee - doubt", "Flu/COVID/RSV neg"
    r"^(?:[ \t]+(?:in|of)[ \t]+(?:the[ \t]+|both[ \t]+|[lr][ \t]+|left[ \t]+|right[ \t]+)?[a-z]+|"
    r"[ \t]*/[ \t]*[\w-]+){0,5}"
    r"(?:[ \t]+(?:screen(?:ing)?|test(?:ing)?|swab|pcr|w/u|work-?up|scan|u/s|us|ct|cta|study|"
    r"eval(?:uation)?|ag(?:[ \t]*/[ \t]*ab)?|ab|antigen|antibody|serology|sx|symptoms|episodes?|burden)"
    r"(?:[ \t]+(?:since|in (?:the )?(?:past|last))(?:[ \t]+[\w-]+){1,3}?(?=[ \t]*[:=-]))?)?"
    r"[ \t]*(?:[,:=(]|[-\u2014\u2013]+>?|\?+)?[ \t]*(?:[-\u2014\u2013]+[ \t]*)?(?:"
    r"(?P<absent>(?:was |is |were |are |now |been )?(?:ruled out|r/o'?d|excluded|unlikely|not likely|"
    r"less likely|low (?:clinical |pre-?test )?(?:suspicion|probability|likelihood)\b|"
    r"doubt(?:ful|ed)?\b|not favou?red|not suspected|not supported|not present|not seen|not found|"
    r"neg(?:ative)?\b|non-?reactive\b|never" + _END + "|"
    r"(?:none |not )detected\b|none" + _END + "|no" + _END + r"|absent|denied|denies))|"
    r"(?P<historical>(?:now |has |have |since |which |that )?(?:resolved|healed)\b)|"
    r"(?P<possible>(?:was |is |were |are |also |being )?(?:possible|possibly|probable|suspected|"
    r"questionable|query|"
    r"considered|versus\b|vs\b\.?|likely" + _END + r"|not excluded|cannot be excluded|can't be excluded|"
    r"not ruled out|to be ruled out|r/o\b|\?)))",
    re.I,
)
# After a suspicion, the work-up's answer in the same clause: "PE considered - CTA negative",
# "ACS considered, ruled out", "CHF? no".
_RESOLVED_SUSPICION = re.compile(
    r"\b(?:ruled out|r/o'?d|excluded|neg(?:ative)?\b|unlikely|not likely|less likely|doubt(?:ful)?\b|"
    r"not favou?red|none\b|no" + _END + r"|not (?:found|seen|present|supported)|unremarkable|wnl\b|"
    r"wells (?:score )?(?:low|0)\b|low (?:clinical |pre-?test )?(?:probability|risk|suspicion)\b|"
    r"no (?:[\w-]+ ){0,2}(?:features|signs|evidence|findings)\b)",
    re.I,
)
# A sentence that tells the patient when to come back: every finding after it is hypothetical.
_HYPOTHETICAL_LEAD = re.compile(
    r"\b(?:(?:return|come back|rtc|re-?present|go(?: back)? to (?:the )?(?:ed|er|emergency "
    r"(?:room|department)|hospital|triage|l&d|labor and del"
    r"ivery|urgent care)|(?:tell|inform|alert)(?= (?:the )?"
    r"(?:rn|nurse|staff|md|doctor|provider|team|us|clinic))|seek (?:"
    r"immediate |urgent |emergency )?(?:medical )?(?:care|attention|"
    r"evaluation|help)|call(?: 911| us| the (?:office|clinic)| clinic| md| back)?|notify(?: us| md| provider"
    r"| the (?:team|office|provider))?|contact(?: us| the (?:office|clinic))?|report|page(?: md)?)"
    r"(?:\s+(?:to|the|ed|er|clinic|office|hospital|immediately|right away|sooner|asap|urgently|emergency|"
    r"room|department|here|us)){0,4}(?:\s+[\w/-]+){0,3}?\s+(?:for|if|with|w/|should|in case of|when|any)"
    r"(?!\s*(?:a\s+)?(?:follow|f/u|fu\b|recheck|re-?eval|visit|appointment|appt|check|results|labs))|"
    r"(?:return|ed|er|strict|emergency|bleeding|seizure|safety) precautions|precautions\s*(?:given|reviewed|"
    r"discussed|provided)?\s*(?:for|re:?|including|incl\.?|:|-)|warning signs|red flags?|reasons to return|"
    r"signs and symptoms of|s/sx of|watch (?:out )?for|look out for|monitor for|in the event of)|"
    r"\b(?:911|988|ed|er)\s+if\b|\b911\s+(?:for|with)\b|"
    # "Call agency/MD: ...", "Return to ED / call 911: ..."
    r"^[ \t]*(?:[-*\u2022][ \t]*)?(?:[\w ]{0,25}?(?:/|\bor\b)\s*)?(?:call|notify|contact|page)\b"
    r"(?:\s+[\w/&-]+){0,4}?\s*:|"
    # an instruction that starts the sentence: "ED for ...", "Report bleeding ...", "or ED if ..."
    r"^[ \t]*(?:[-*\u2022][ \t]*)?(?:(?:ed|er|911|urgent car"
    r"e)\s+(?:for|with|w/)\b|report(?!\s+(?:of|from|by|that|"
    r"states|shows|is|was))\b)|"
    r"^[ \t]*(?:[-*\u2022][ \t]*)?(?:if|should (?:he|she|you|they|pt|patient) "
    r"(?:develop|have|experience|notice))\b",
    re.I,
)
# The instruction after the findings, at the end of the sentence: "Fever >104 or rash - call."
_HYPOTHETICAL_TAIL = re.compile(
    r"[-\u2014\u2013>,:]+[ \t]*(?:call|return|come back|go"
    r" to (?:the )?(?:ed|er)|911)(?:[ \t]+(?:us|911|md|the "
    r"office|the clinic|clinic|pcp|ed|er|asap|immediately))?[ \t]*[.!]?[ \t]*$",
    re.I,
)
_CONTRAST = re.compile(r"\b(?:but|however|although|though|currently|today|now)\b", re.I)
_YEAR = re.compile(r"(?<![\d/.-])(?:(?:\d{1,2}/){1,2})?((?:19|20)\d\d)(?![\d])")
# A year or date right after the finding: "DVT 2018", "MI (2015)", "pneumonia in 2022", "PE 3/2019".
_DATE_AFTER = re.compile(
    r"^[ \t]*(?:(?:admissions?|episodes?|hospitali[sz]ations?|attacks?|events?)[ \t]*)?"
    r"[,(-]?[ \t]*(?:in|dx(?:'d)?|diagnosed(?: in)?|x\s?\d(?: in)?|\d+\s*x(?: in)?|on)?[ \t]*\(?[ \t]*"
    r"(?:(?:\d{1,2}/){1,2})?((?:19|20)\d\d)(?!\d)",
    re.I,
)
# An age after the finding: "febrile seizure at 18 mo", "bronchiolitis at 8 mo", "appendicitis at age 12".
_AGE_AFTER = re.compile(
    r"^[ \t]*(?:at|@)[ \t]+(?:age[ \t]+)?\d{1,2}[ \t]*(?:mo|mos|months?|m/o|yo|y/o|y|yrs?|years?)\b"
    r"(?![ \t]*(?:old|of age)?[ \t]*(?:now|today))",
    re.I,
)
# A past stay or event named with its year before the finding: "admitted 2019 for DKA", "in 2018 had a
# PE", "2015: MI".
_DATED_EVENT_BEFORE = re.compile(
    r"(?:\b(?:admitted|admission|hospitali[sz]ed|hospitali[sz]ation|seen|treated|episode|ed visit|"
    r"er visit|icu stay|stay|in|since|during)\b[^.;\n]{0,20}?)?(?<![\d/.-])(?:(?:\d{1,2}/){1,2})?"
    r"((?:19|20)\d\d)(?!\d)[^.;\n]{0,40}$",
    re.I,
)
PRECAUTION_SECTIONS = frozenset({"precautions"})


@lru_cache(maxsize=8)
def note_year(text: str) -> int | None:
    """The note's own year: the latest year written in it (the visit is the latest event of the note)."""
    years = [int(match.group(1)) for match in _YEAR.finditer(text)]
    return max(years) if years else None


def _past_year(text: str, year: str) -> bool:
    current = note_year(text)
    return current is None or int(year) < current


def assert_finding(layout: NoteLayout, start: int, end: int) -> AssertionResult:
    """The status of the finding at text[start:end] from its sentence and its section."""
    text = layout.text
    segment = layout.segment_at(start)
    before = text[segment.start : start]
    after = text[end : segment.end]
    # Scope before the finding: from the last hard stop or terminator, at most PRE_WINDOW_WORDS words.
    if _ROS_MINUS.search(before):
        return AssertionResult(ABSENT, "(-)")
    # "non" negates the word it is attached to: "non-diabetic" is, "non-gap acidosis" and "non-ST elevation
    # MI" are not
    if _NON_ATTACHED.search(before):
        return AssertionResult(ABSENT, "non")
    immediate = _immediate_post_cue(text, end)
    if immediate is not None:
        return immediate
    lead = _hypothetical_lead(before)
    if lead is not None:
        return AssertionResult(HYPOTHETICAL, lead)
    tail = _HYPOTHETICAL_TAIL.search(after)
    if tail is not None:
        return AssertionResult(HYPOTHETICAL, tail.group(0).strip())
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
    dated = _DATE_AFTER.match(text[end : end + 40])
    if dated and _past_year(text, dated.group(1)):
        return AssertionResult(HISTORICAL, "dated")
    if _AGE_AFTER.match(text[end : end + 30]):
        return AssertionResult(HISTORICAL, "dated")
    dated = _DATED_EVENT_BEFORE.search(scope_before)
    if dated and _past_year(text, dated.group(1)):
        return AssertionResult(HISTORICAL, "dated")
    section = layout.section_at(start)
    if section == "past_surgical_history":
        return AssertionResult(HISTORICAL, "section")
    if section == "family_history":
        return AssertionResult(FAMILY, "section")
    if section in PRECAUTION_SECTIONS:
        return AssertionResult(HYPOTHETICAL, "section")
    return AssertionResult(PRESENT, None)


def _immediate_post_cue(text: str, end: int) -> AssertionResult | None:
    window = text[end : end + 120]
    found = _IMMEDIATE_POST.match(window)
    if not found:
        return None
    if found.group("absent"):
        return AssertionResult(ABSENT, found.group("absent"))
    if found.group("historical"):
        return AssertionResult(HISTORICAL, found.group("historical"))
    # a suspicion, unless the same clause answers it
    rest = window[found.end() :]
    clause = re.split(r"(?<=[a-z0-9])\.(?:\s|$)|\b(?:but|however|and then)\b|\n", rest, maxsplit=1)[0]
    if _RESOLVED_SUSPICION.search(clause[:100]):
        return AssertionResult(ABSENT, found.group("possible") + " ... " + clause.strip()[:20])
    return AssertionResult(POSSIBLE, found.group("possible"))


def _hypothetical_lead(before: str) -> str | None:
    """The return-precautions lead of the sentence, unless a contrast ("but today...") follows it."""
    leads = list(_HYPOTHETICAL_LEAD.finditer(before))
    if not leads:
        return None
    lead = leads[-1]
    if _CONTRAST.search(before, lead.end()):
        return None
    return lead.group(0)
