"""What kind of note this is (ED, discharge summary, consult, ...) and so the encounter's class.

The first lines name the note in most systems ("ED PROVIDER NOTE", "Discharge Summary", "Telephone
encounter"); section headings and phrases that only one kind of note has decide otherwise. The class
is the HL7 v3 ActCode FHIR's Encounter.class takes: EMER, IMP (inpatient), AMB, VR (virtual), HH.
"""

from __future__ import annotations

import re

# (note type, pattern) in priority order: the first that matches the note's opening lines wins, then the
# first that matches anywhere.
_TYPES: tuple[tuple[str, str], ...] = (
    (
        "discharge",
        r"discharge summary|discharge note|d/c summary|hospital course|date of discharge|"
        r"discharge date|discharged? (?:on|to)\b",
    ),
    (
        "ed",
        r"emergency department|emergency room|\bED (?:provider|physician|note|visit|course|triage)|"
        r"\bER (?:note|visit)|urgent care",
    ),
    ("icu", r"\b(?:MICU|SICU|CVICU|CCU|NICU|PICU|ICU)\b|intensive care|critical care"),
    (
        "telephone",
        r"telephone|phone (?:call|note|encounter)|portal message|patient message|"
        r"message from|called (?:in|the clinic|back)|refill request|telehealth|video visit|nurse line|"
        r"triage call",
    ),
    (
        "nursing",
        r"nursing (?:note|shift|assessment|progress)|\bRN (?:note|shift)|"
        r"shift (?:note|assessment|summary)|"
        r"\bMAR\b|nurse'?s? note|I&O|intake/output",
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
        r"p(?:a)?ediatric\w*|well[- ]child|well[- ]baby|\bWCC\b|\bmom (?:reports|states|says)|"
        r"\bparents? (?:report|state|say)s?|\d+[- ](?:month|mo|day|week)[- ]old",
    ),
    ("progress", r"progress note|\bSOAP\b|hospital day|\bHD\s?#?\d|\bPOD\s?#?\d|interval history"),
    (
        "office",
        r"office visit|clinic (?:visit|note)|follow[- ]up visit|annual (?:exam|physical)|"
        r"new patient visit",
    ),
)
_PATTERNS = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _TYPES]
# Only in a note's opening lines: a bare "ED" or "ER" elsewhere may be erectile dysfunction or an
# oestrogen receptor.
_OPENING_ONLY = [("ed", re.compile(r"\b(?:ED|ER)\b"))]
_INPATIENT = re.compile(
    r"\b(?:inpatient|admitted|admission|hospital day|HD\s?#?\d|POD\s?#?\d|on the floor|telemetry|"
    r"\bward\b|inpatient unit|bedside)",
    re.IGNORECASE,
)
_HOME = re.compile(r"home health|home visit|visiting nurse", re.IGNORECASE)
CLASS_BY_TYPE = {"ed": "EMER", "discharge": "IMP", "icu": "IMP", "telephone": "VR"}


def note_type(text: str) -> str | None:
    opening = "\n".join(line for line in text[:400].splitlines()[:4] if line.strip())
    for kind, pattern in _PATTERNS + _OPENING_ONLY:
        if pattern.search(opening):
            return kind
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None


def encounter_class(kind: str | None, text: str) -> str:
    if kind in CLASS_BY_TYPE:
        return CLASS_BY_TYPE[kind]
    if _HOME.search(text):
        return "HH"
    if kind == "nursing" or (kind in ("consult", "progress", "psychiatry") and _INPATIENT.search(text)):
        return "IMP"
    return "AMB"
