"""What kind of note this is (ED, discharge summary, consult, ...) and so the encounter's class.

The first lines name the note in most systems ("ED PROVIDER NOTE", "Discharge Summary", "Telephone
encounter", "OUTPATIENT PSYCHIATRY"); otherwise phrases only one kind of note has decide. The class is
the HL7 v3 ActCode FHIR's Encounter.class takes: EMER, IMP (inpatient), AMB, VR (virtual), HH.
"""

from __future__ import annotations

import re

# (note type, pattern) in priority order: the first that matches the note's opening lines wins, then the
# first that matches anywhere ("-opening" types only count in the title, the first line).
_TYPES: tuple[tuple[str, str], ...] = (
    (
        "discharge",
        r"discharge summary|discharge note|d/c summary|hospital course|date of discharge|"
        r"discharge date|discharged? (?:on|to)\b",
    ),
    (
        "ed",
        r"emergency department|emergency room|\bED (?:provider|physician|note|visit|course|triage)|"
        r"\bER (?:note|visit)",
    ),
    # a bare "ED"/"ER" elsewhere may be erectile dysfunction or an oestrogen receptor
    ("ed-opening", r"(?-i:\b(?:ED|ER)\b)"),
    # "no PICU stays" in a history is not the setting
    ("icu-opening", r"\b(?:MICU|SICU|CVICU|CCU|NICU|PICU|ICU)\b|intensive care|critical care"),
    ("nursing", r"home health|skilled nursing visit|visiting nurse"),
    (
        "telephone",
        r"telephone|phone (?:call|note|encounter)|portal message|patient message|"
        r"message from|called (?:in|the clinic|back)|refill request|telehealth|video visit|nurse line|"
        r"triage call",
    ),
    (
        "nursing",
        r"nursing (?:note|shift|assessment|progress|visit)|\bRN (?:note|shift)|"
        r"shift (?:note|assessment|summary)|\bMAR\b|nurse'?s? note|I&O|intake/output",
    ),
    (
        "prenatal",
        r"prenatal|antepartum|\bOB (?:visit|note|clinic)|obstetric|\bG\d\s*P\d|weeks? gestation|"
        r"\bEGA\b|fundal height",
    ),
    ("oncology", r"oncology|hematology/oncology|heme/onc|chemotherapy|\bC\d+D\d+\b|cycle \d+ day"),
    ("psychiatry", r"psychiatr\w*|mental status exam\w*|\bMSE\b|behavioral health"),
    ("consult", r"consult\w*|reason for referral|referring (?:physician|provider)"),
    (
        "pediatrics",
        r"p(?:a)?ediatric\w*|\bpeds\b|well[- ]child|well[- ]baby|\bWCC\b|\bmom (?:reports|states|says)|"
        r"\bparents? (?:report|state|say)s?|\d+[- ](?:month|mo|day|week)[- ]old",
    ),
    ("progress", r"progress note|\bSOAP\b|hospital day|\bHD\s?#?\d|\bPOD\s?#?\d|interval history"),
    (
        "office",
        r"office visit|clinic (?:visit|note)|follow[- ]up visit|annual (?:exam|physical)|"
        r"new patient visit|urgent care|transitional care",
    ),
)
_PATTERNS = [
    (kind.removesuffix("-opening"), kind.endswith("-opening"), re.compile(p, re.I)) for kind, p in _TYPES
]
# The setting the opening lines state outright wins over the note type's usual one.
_OPENING_SETTING = (
    ("HH", re.compile(r"home health|home visit|visiting nurse", re.I)),
    ("AMB", re.compile(r"\boutpatient\b|\bclinic\b|office visit", re.I)),
    ("IMP", re.compile(r"\binpatient\b|hospitalist|\bHD\s?#?\d|\bPOD\s?#?\d|admission (?:H&P|note)", re.I)),
)
# Anywhere in a nursing, consult, progress or psychiatry note: the patient is in hospital.
_INPATIENT = re.compile(
    r"\b(?:admitted|hospital day|HD\s?#?\d|POD\s?#?\d|on the floor|telemetry|\bward\b|inpatient unit|"
    r"bedside)",
    re.IGNORECASE,
)
CLASS_BY_TYPE = {"ed": "EMER", "discharge": "IMP", "icu": "IMP", "telephone": "VR"}


def _opening(text: str) -> str:
    return "\n".join(line for line in text[:400].splitlines()[:4] if line.strip())


def _opening_type(opening: str) -> str | None:
    title = opening.split("\n", 1)[0]
    for kind, title_only, pattern in _PATTERNS:
        if pattern.search(title if title_only else opening):
            return kind
    return None


def _opening_setting(opening: str) -> str | None:
    return next((code for code, pattern in _OPENING_SETTING if pattern.search(opening)), None)


def note_type(text: str) -> str | None:
    opening = _opening(text)
    kind = _opening_type(opening)
    if kind is not None:
        return kind
    # An ambulatory visit's history ("ER visit last month", "Hospital course: ...") does not make it an ED
    # note or a discharge summary.
    elsewhere = ("ed", "discharge") if _opening_setting(opening) == "AMB" else ()
    for kind, opening_only, pattern in _PATTERNS:
        if not opening_only and kind not in elsewhere and pattern.search(text):
            return kind
    return None


def encounter_class(kind: str | None, text: str) -> str:
    opening = _opening(text)
    setting = _opening_setting(opening)
    if setting and _opening_type(opening) not in ("ed", "discharge", "telephone"):
        return setting
    if kind in CLASS_BY_TYPE:
        return CLASS_BY_TYPE[kind]
    if kind == "nursing" or (kind in ("consult", "progress", "psychiatry") and _INPATIENT.search(text)):
        return "IMP"
    return "AMB"
