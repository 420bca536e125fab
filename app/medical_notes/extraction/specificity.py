"""The detail that reaches the ICD-10-CM code: laterality, remission, trimester and gestational diabetes
control, and the guards that keep a word inside a longer term (an ECG finding, a score, "room air") from
being read as a condition."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medical_notes.extraction.terminology import Terminology

# Unspecified-side code -> (right, left, bilateral); None where the code set has no such code.
LATERALITY: dict[str, tuple[str | None, str | None, str | None]] = {
    "M17.9": ("M17.11", "M17.12", "M17.0"),
    "M16.9": ("M16.11", "M16.12", "M16.0"),
    "M19.019": ("M19.011", "M19.012", None),
    "M25.569": ("M25.561", "M25.562", None),
    "M25.559": ("M25.551", "M25.552", None),
    "M25.519": ("M25.511", "M25.512", None),
    "M25.539": ("M25.531", "M25.532", None),
    "M25.529": ("M25.521", "M25.522", None),
    "M25.579": ("M25.571", "M25.572", None),
    "M79.673": ("M79.671", "M79.672", None),
    "M79.643": ("M79.641", "M79.642", None),
    "M25.469": ("M25.461", "M25.462", None),
    "M54.30": ("M54.31", "M54.32", None),
    "G56.00": ("G56.01", "G56.02", "G56.03"),
    "M75.00": ("M75.01", "M75.02", None),
    "H92.09": ("H92.01", "H92.02", "H92.03"),
    "H66.90": ("H66.91", "H66.92", "H66.93"),
    "H65.90": ("H65.91", "H65.92", "H65.93"),
    "H60.90": ("H60.91", "H60.92", "H60.93"),
    "H57.10": ("H57.11", "H57.12", "H57.13"),
    "H61.20": ("H61.21", "H61.22", "H61.23"),
    "H93.19": ("H93.11", "H93.12", "H93.13"),
    "H91.90": ("H91.91", "H91.92", "H91.93"),
    "C50.919": ("C50.911", "C50.912", None),
    "C34.90": ("C34.91", "C34.92", None),
    "I82.409": ("I82.401", "I82.402", "I82.403"),
    "L03.119": ("L03.115", "L03.116", None),
}
_SIDE_WORDS = {
    "right": 0,
    "r": 0,
    "rt": 0,
    "rle": 0,
    "rue": 0,
    "left": 1,
    "l": 1,
    "lt": 1,
    "lle": 1,
    "lue": 1,
    "bilateral": 2,
    "bilat": 2,
    "b/l": 2,
    "both": 2,
    "bl": 2,
}
_SIDE = r"(?:right|left|rt|lt|bilateral|bilat|b/l|both|rle|lle|rue|lue|r|l)"
_SIDE_BEFORE = re.compile(
    rf"(?<![\w/])(?P<side>{_SIDE})\.?\s*(?:-\s*sided\s+|sided\s+)?(?:(?:knee|hip|shoulder|ankle|wrist|elbow|"
    r"foot|hand|ear|eye|leg|lower extremity|upper extremity|arm|breast|lung|sided)s?\s+){0,2}$",
    re.I,
)
_SIDE_AFTER = re.compile(
    rf"^\s*(?:\(\s*(?P<paren>{_SIDE})\s*\)|,\s*(?P<comma>{_SIDE})(?![\w/])|\s+of\s+(?:the\s+|both\s+)?"
    rf"(?P<of>{_SIDE})\b|\s+(?P<bare>{_SIDE})(?=\s*(?:[.,;:)\n]|$))|\s*[-\u2014]\s*(?P<dash>{_SIDE})\b)",
    re.I,
)

# Code -> (partial remission, full remission, remission unspecified)
REMISSION: dict[str, tuple[str, str, str]] = {
    "F32.9": ("F32.4", "F32.5", "F32.5"),
    "F32.A": ("F32.4", "F32.5", "F32.5"),
    "F33.9": ("F33.41", "F33.42", "F33.40"),
    "F31.9": ("F31.70", "F31.70", "F31.70"),
    "C92.00": ("C92.01", "C92.01", "C92.01"),
    "C91.00": ("C91.01", "C91.01", "C91.01"),
    "C91.10": ("C91.11", "C91.11", "C91.11"),
    "C90.00": ("C90.01", "C90.01", "C90.01"),
    "F10.20": ("F10.21", "F10.21", "F10.21"),
    "F11.20": ("F11.21", "F11.21", "F11.21"),
}
_REMISSION = re.compile(
    r"^[\s,(-]*(?:(?:currently|now|recurrent|single episode|mild|moderate|severe)[\s,]+)*(?:in\s+|with\s+)?"
    r"(?P<kind>partial|full|complete|early|sustained)?\s*remission\b",
    re.I,
)
_RECURRENT = re.compile(r"\brecurrent\b", re.I)

# Gestational age as written: "32 weeks", "32w3d", "GA 32+3", "32 5/7 wks".
GESTATION = re.compile(
    r"(?:\b(?:e?ga|gestational age|iup)\s*(?:at|of|:|=)?\s*|\bat\s+)?(?<![\d/.])(?P<weeks>[1-4]?\d)"
    r"(?:\s*(?:\+\s*\d|\d/7|w\s*\d\s*d|\s+\d/7))?\s*(?:weeks?|wks?|w)(?:\s*\d\s*d(?:ays?)?)?\b"
    r"(?:\s*(?:gestation(?:al age)?|ga|ega|pregnant|of pregnancy|iup))?",
    re.I,
)
_GESTATION_MARKER = re.compile(r"\b(?:e?ga|iup|gestation|pregnan|g\d\s*p\d)", re.I)
PREGNANCY_NOTE = re.compile(
    r"\b(?:pregnan\w*|prenatal|antenatal|gestation\w*|g\d\s*p\d+|iup|edd|e?ga\b|trimester|ob/gyn)", re.I
)
_DIET = re.compile(r"\bdiet[- ]?(?:controlled|control|managed)\b|\ba1\s*gdm\b|\bgdm\s*a1\b", re.I)
_INSULIN = re.compile(r"\binsulin\b|\bnph\b|\blispro\b|\baspart\b|\bglargine\b|\bdetemir\b", re.I)
_ORAL = re.compile(r"\bmetformin\b|\bglyburide\b", re.I)


def side_of(text: str, start: int, end: int) -> int | None:
    """0 right, 1 left, 2 bilateral, from a side word just before or just after the finding."""
    before = _SIDE_BEFORE.search(text, max(0, start - 40), start)
    if before:
        return _SIDE_WORDS[before.group("side").lower()]
    after = _SIDE_AFTER.match(text[end : end + 40])
    if after:
        word = next(group for group in after.groups() if group)
        return _SIDE_WORDS[word.lower()]
    return None


_OA_SIDE = r"(?:(?P<side>right|left|rt|lt|r|l|bilateral|bilat|b/l|both)\.?\s+)?"
_OA_JOINT_BEFORE = re.compile(
    _OA_SIDE
    + r"(?P<joint>knees?|hips?)(?:\s+(?:primary|secondary|severe|mild|moderate|advanced|end-stage))?\s*$",
    re.I,
)
_OA_JOINT_AFTER = re.compile(r"^\s+(?:of\s+(?:the\s+)?)?" + _OA_SIDE + r"(?P<joint>knees?|hips?)\b", re.I)
_OA_SIDES = {
    "right": 0,
    "rt": 0,
    "r": 0,
    "left": 1,
    "lt": 1,
    "l": 1,
    "bilateral": 2,
    "bilat": 2,
    "b/l": 2,
    "both": 2,
}


_EDEMA_SITE = re.compile(
    r"\b(?:ankles?|legs?|le|lle|rle|bles?|pedal|pretibial|shins?|mid-shin|feet|foot|calf|calves|lower "
    r"extremit(?:y|ies)|hands?|face|facial|periorbital)\b",
    re.I,
)


def site_code(code: str, text: str, start: int, end: int) -> str:
    """Osteoarthritis with its joint and side beside it: "R knee primary OA", "OA R hip"; edema with its
    site: "1+ pretibial edema", "edema 2+ bilat LE", "Edema - mild ankles" (localized, R60.0)."""
    if code == "R60.9":
        before = re.split(r"[.;,:\n(]", text[max(0, start - 25) : start])[-1]
        after = re.split(r"[.;,\n(]", text[end : end + 30])[0]
        return "R60.0" if _EDEMA_SITE.search(before) or _EDEMA_SITE.search(after) else code
    if code != "M19.90":
        return code
    found = _OA_JOINT_BEFORE.search(text[max(0, start - 30) : start]) or _OA_JOINT_AFTER.match(
        text[end : end + 25]
    )
    if not found:
        return code
    joint = found.group("joint").lower()
    options = LATERALITY["M17.9" if joint.startswith("knee") else "M16.9"]
    side = found.group("side")
    side_index = _OA_SIDES[side.lower()] if side else (2 if joint.endswith("s") else None)
    if side_index is None:
        return "M17.9" if joint.startswith("knee") else "M16.9"
    return options[side_index] or code


def lateral_code(code: str, text: str, start: int, end: int) -> str:
    options = LATERALITY.get(code)
    if options is None:
        return code
    side = side_of(text, start, end)
    if side is None:
        return code
    return options[side] or code


def remission_code(code: str, text: str, start: int, end: int) -> str:
    options = REMISSION.get(code)
    if options is None:
        return code
    found = _REMISSION.match(text[end : end + 60]) or _REMISSION.search(text[start:end])
    if not found:
        return code
    if code in ("F32.9", "F32.A") and _RECURRENT.search(text[max(0, start - 30) : end + 60]):
        options = REMISSION["F33.9"]
    kind = (found.group("kind") or "").lower()
    if kind in ("partial", "early"):
        return options[0]
    if kind in ("full", "complete", "sustained"):
        return options[1]
    return options[2]


def gestational_weeks(text: str) -> list[tuple[int, int, int]]:
    """(start, end, weeks) of every gestational age written in a pregnancy note."""
    if not PREGNANCY_NOTE.search(text):
        return []
    found = []
    for match in GESTATION.finditer(text):
        weeks = int(match.group("weeks"))
        phrase = match.group(0)
        written_days = re.search(r"\d\s*d\b|\d/7|\+\s*\d", phrase)
        marker = _GESTATION_MARKER.search(phrase) or written_days
        nearby = text[max(0, match.start() - 25) : match.start()]
        if re.search(
            r"\b(?:deliver\w*|induc\w*|iol|until|by|plan\w*|schedul\w*|before|after)\s*(?:at\s*)?$",
            nearby,
            re.I,
        ):
            continue  # a planned date, not today's gestational age
        if not 4 <= weeks <= 42 or not (marker or re.search(r"\bg\d\s*p\d+\s*(?:at|@)?\s*$", nearby, re.I)):
            continue
        found.append((match.start(), match.end(), weeks))
    return found


def trimester(text: str) -> int | None:
    weeks = [w for _, _, w in gestational_weeks(text)]
    if not weeks:
        found = re.search(r"\b(first|1st|second|2nd|third|3rd)\s+trimester\b", text, re.I)
        if not found:
            return None
        return {"f": 1, "1": 1, "s": 2, "2": 2, "t": 3, "3": 3}[found.group(1)[0].lower()]
    last = weeks[-1]
    return 1 if last < 14 else 2 if last < 28 else 3


# A past event's own code -> its personal-history code ("s/p MI 2015", "hx of DVT 2018").
_PERSONAL_HISTORY = (
    (re.compile(r"^I2[12]\."), "I25.2"),
    (re.compile(r"^I82\.4"), "Z86.718"),
    (re.compile(r"^I26\."), "Z86.711"),
    (re.compile(r"^(?:I63\.|G45\.9)"), "Z86.73"),
    (re.compile(r"^N2[01]\."), "Z87.442"),  # a past kidney or ureter stone
    (re.compile(r"^C50\."), "Z85.3"),  # a treated breast cancer
    (re.compile(r"^J21\."), "Z87.09"),  # bronchiolitis in infancy
)


def history_code(code: str) -> str:
    for pattern, replacement in _PERSONAL_HISTORY:
        if pattern.match(code):
            return replacement
    return code


def pregnancy_code(code: str, text: str, terms: Terminology) -> str:
    """Trimester from the gestational age; gestational diabetes control from the note's treatment."""
    if code == "O24.419":
        if _DIET.search(text):
            return "O24.410"
        if _INSULIN.search(text):
            return "O24.414"
        if _ORAL.search(text):
            return "O24.415"
        return code
    if not code.startswith("O"):
        return code
    entry = terms.icd10cm.get(code)
    if entry is None or not entry.description.endswith("unspecified trimester"):
        return code
    term = trimester(text)
    if term is None:
        return code
    specific = code[:-1] + str(term)
    found = terms.icd10cm.get(specific)
    if found is not None and found.billable and "trimester" in found.description:
        return specific
    return code


# Guards: places where a condition word means something else.
SCORE_NAMES = re.compile(
    r"\b(?:PHQ|GAD|CHA2?DS2?(?:-?VAS[Cc])?|HAS-?BLED|MELD(?:-Na)?|CURB|Wells|HEART|TIMI|CIWA(?:-Ar)?|"
    r"COWS|AUDIT"
    r"(?:-C)?|EPDS|MoCA|MMSE|NIHSS|ASCVD|FRAX|Geneva|PERC|q?SOFA|APACHE|GCS|Ranson|Child-Pugh|PESI|ABCD2?|"
    r"Caprini|Padua|Braden|Morse|Apgar|APGAR|Bishop|Centor|C-SSRS|Y-BOCS|PCL-5|MDQ|CAGE|ASRS|Vanderbilt|ACT|"
    r"mMRC|CAT|DAS28|HbA1c|BISAP|Glasgow)(?:[\s-]*\d+)?(?:\s*(?:score|criteria|scale|risk))?",
)
_SCORE_WORD = re.compile(r"^[\s-]*(?:\d+\b|score|criteria|scale)", re.I)
_ECG_BEFORE = re.compile(
    r"(?:\bST|\bST[- ]segment|\bPR|\bPR[- ]segment|\bJ[- ]point|respiratory|\bCNS|marrow|myocardial|"
    r"ventilatory|\bT[- ]wave)[\s-]*$",
    re.I,
)
_JOINT_BEFORE = re.compile(
    r"\b(?P<joint>knee|ankle|hip|elbow|shoulder|wrist|joint)s?\s+(?:\w+\s+)?$",
    re.I,
)
_CHEST_CONTEXT = re.compile(
    r"\b(?:cxr|chest|x-?ray|ct|cta|lungs?|pleural|thorac\w*|pulm\w*|bases?|costophrenic|thoracentesis)\b",
    re.I,
)
_CVA_TENDERNESS = re.compile(r"^\s*(?:tenderness|ttp|tend\b|angle|pain)", re.I)
_ROOM_AIR_BEFORE = re.compile(
    r"(?:%|\bon|\bsat\w*|\bspo2|\bo2|\bsats|\b(?:back|weaned|wean|transitioned|down|titrated) to)"
    r"\s*(?:of\s*)?$",
    re.I,
)
_ROOM_AIR_AFTER = re.compile(r"^\s*(?:sat|spo2|o2|%)", re.I)
_EXAM_AFTER = re.compile(r"^\s*(?:tubes?|exam\w*|notable|unremarkable|wnl|normal|benign|:|findings)", re.I)
_EXAM_BEFORE = re.compile(r"\b(?:on|per|physical|during|at)\s*$", re.I)


JOINT_EFFUSION = {
    "knee": "M25.469",
    "ankle": "M25.479",
    "hip": "M25.459",
    "elbow": "M25.429",
    "shoulder": "M25.419",
    "wrist": "M25.439",
    "joint": "M25.40",
}


def joint_of_effusion(text: str, start: int) -> tuple[int, str] | None:
    """(start of the joint word, unspecified-side code) for "knee effusion", "R knee small effusion"."""
    joint = _JOINT_BEFORE.search(text[max(0, start - 40) : start])
    if not joint:
        return None
    return start - 40 + joint.start() if start >= 40 else joint.start(), JOINT_EFFUSION[
        joint.group("joint").lower()
    ]


def score_spans(text: str) -> list[tuple[int, int]]:
    """Score and scale names ("PHQ-9", "GAD-7", "CHA2DS2-VASc", "CURB-65", "Wells score")."""
    spans = []
    for match in SCORE_NAMES.finditer(text):
        word = match.group(0)
        # a bare "GAD" or "ACT" is the disorder, a "GAD-7" or "GAD 7 = 12" is the scale
        if re.fullmatch(r"GAD|ACT|CAT|HEART|AUDIT|CAGE|Glasgow", word) and not _SCORE_WORD.match(
            text, match.end()
        ):
            continue
        spans.append((match.start(), match.end()))
    return spans


def guarded(key: str, text: str, start: int, end: int) -> str | None:
    """None to keep the phrase, "drop" when it means something else here, or a replacement code."""
    before = text[max(0, start - 40) : start]
    after = text[end : end + 40]
    if key == "depression" and _ECG_BEFORE.search(before):
        return "drop"
    if key == "effusion":
        joint = _JOINT_BEFORE.search(before)
        if joint:
            return None
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", end)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        return "J90" if _CHEST_CONTEXT.search(line) else "drop"
    if key == "cva" and _CVA_TENDERNESS.match(after):
        return "drop"
    if key == "ra" and (_ROOM_AIR_BEFORE.search(before) or _ROOM_AIR_AFTER.match(after)):
        return "drop"
    if key == "pe" and (_EXAM_AFTER.match(after) or _EXAM_BEFORE.search(before)):
        return "drop"
    # a two-letter abbreviation written as a word ("Hi Dr. Lund", "Ms. Diaz") is the word
    if len(key) == 2 and text[start].isupper() and text[start + 1 : end].islower():
        return "drop"
    # the reaction of an allergen named before it ("PCN anaphylaxis", "sulfa -> hives") is the allergy's
    line_start = text.rfind("\n", 0, start) + 1
    if (
        key in _REACTIONS
        and _ALLERGEN_BEFORE.search(before)
        and not _FAMILY_LINE.search(text, line_start, start)
    ):
        return "drop"
    # a screening test's name with its result ("HIV/syphilis repeat: nonreactive", "HIV screen negative")
    if _SCREEN_AFTER.match(after):
        return "drop"
    # the goal of a drug or a program ("asks about phentermine for wt loss"), not a finding
    if key in _THRESHOLD_TERMS and _GOAL_BEFORE.search(before) and not _VISIT_BEFORE.search(before):
        return "drop"
    # an instruction's threshold, not a finding ("weight gain >2 lb in a day")
    if key in _THRESHOLD_TERMS and _THRESHOLD_AFTER.match(after):
        return "drop"
    # obstetric shorthand outside a pregnancy means something else ("left AMA", "4R node")
    if key in _OBSTETRIC_ONLY and not PREGNANCY_NOTE.search(text):
        return "drop"
    return None


_OBSTETRIC_ONLY = frozenset({"ama", "fgr", "ltcs"})
_REACTIONS = frozenset(
    {
        "anaphylaxis",
        "anaphylactic reaction",
        "hives",
        "urticaria",
        "rash",
        "angioedema",
        "itching",
        "pruritus",
    }
)
_ALLERGEN_BEFORE = re.compile(
    r"\b(?:pcn|penicillins?|sulfa|sulfonamides?|latex|contrast|iodine|peanuts?|tree nuts?|nuts?|shellfish|"
    r"eggs?|nsaids?|cephalosporins?|\w+cillin|\w+mycin|\w+floxacin|codeine|morphine|bee stings?|"
    r"allergy|allergic)"
    r"[ \t]*(?:-+>?|\u2192|:|,|with|w/|causes?|caused)?[ \t]*(?:\([ \t]*)?$",
    re.I,
)
_SCREEN_AFTER = re.compile(
    r"^(?:[ \t]*/[ \t]*[\w-]+){0,5}[ \t]*(?:(?:screen(?:ing)?|repeat|serology|ab|antibody|antigen|rpr|titer|"
    r"igg)[ \t]*)?[:=-]?[ \t]*(?:non-?reactive|reactive|non-?immune|immune)\b",
    re.I,
)
_FAMILY_LINE = re.compile(
    r"\b(?:fhx?|family|mother|father|mom|dad|sister|brother|son|daughter|aunt|uncle|grand\w+|sibling)\b", re.I
)
_THRESHOLD_TERMS = frozenset({"weight gain", "weight loss", "wt gain", "wt loss"})
_GOAL_BEFORE = re.compile(r"\b(?:for|to help with|help with|to aid|to promote)[ \t]+$", re.I)
_VISIT_BEFORE = re.compile(
    r"\b(?:admit\w*|admission|present\w*|seen|evaluat\w*|w/u|work-?up|referr?\w*|here|visit|f/u|follow-?up)\b"
    r"[^.;\n]{0,25}$",
    re.I,
)
_THRESHOLD_AFTER = re.compile(
    r"^[ \t]*(?:of[ \t]*)?(?:[>\u2265]|(?:more than|over|greater than|of)[ \t]+\d)", re.I
)
