"""Medication mentions: ingredient (RxNorm), dose, route, frequency, PRN, duration and status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from medical_notes.extraction.lexicon import PhraseIndex, Token, find_phrases
from medical_notes.extraction.terminology import RXNORM_SYSTEM, Terminology, normalize
from medical_notes.extraction.text import NoteLayout

# Abbreviations notes use for ingredients -> the ingredient's name in the table.
ABBREVIATIONS = {
    "asa": "aspirin",
    "apap": "acetaminophen",
    "hctz": "hydrochlorothiazide",
    "ntg": "nitroglycerin",
    "kcl": "potassium chloride",
    "mtx": "methotrexate",
    "ppi": None,
    "tmp smx": "sulfamethoxazole",
    "smx tmp": "sulfamethoxazole",
    "bactrim": "sulfamethoxazole",
    "augmentin": "amoxicillin",
    "entresto": "sacubitril",
    "nph": None,
    "insulin regular": "insulin regular, human",
    "regular insulin": "insulin regular, human",
    "lantus": "insulin glargine",
    "humalog": "insulin lispro",
    "novolog": "insulin aspart",
    "vitamin d3": "cholecalciferol",
    "vitamin b12": "cyanocobalamin",
    "salbutamol": "albuterol",
    "paracetamol": "acetaminophen",
    "glyceryl trinitrate": "nitroglycerin",
}

ROUTES: tuple[tuple[str, str], ...] = (
    (r"by mouth|p\.?o\.?|orally|oral|per os|chewable|chewed", "oral"),
    (r"sublingual(?:ly)?|s\.?l\.?", "sublingual"),
    (r"subcutaneous(?:ly)?|subcut|sub-q|subq|s\.?c\.?|s\.?q\.?", "subcutaneous"),
    (r"intramuscular(?:ly)?|i\.?m\.?", "intramuscular"),
    (r"intravenous(?:ly)?|i\.?v\.?|ivpb|iv push|infusion", "intravenous"),
    (r"nebuli[sz]ed|nebuli[sz]er|nebs?", "nebulized"),
    (r"inhaled|inhalation|inhaler|inh|mdi|hfa|dpi|puffs?", "inhaled"),
    (r"transdermal(?:ly)?|patch", "transdermal"),
    (r"topical(?:ly)?|apply|cream|ointment|gel", "topical"),
    (r"intranasal(?:ly)?|nasal spray|each nostril|per nostril|nasally", "intranasal"),
    (r"ophthalmic|eye drops?|in (?:each|both|the right|the left) eyes?", "ophthalmic"),
    (r"otic|ear drops?|in (?:each|both|the right|the left) ears?", "otic"),
    (r"rectal(?:ly)?|per rectum|p\.?r\.?|suppository", "rectal"),
    (r"vaginal(?:ly)?|per vagina", "vaginal"),
)
_ROUTE_PATTERNS = [(re.compile(rf"(?<![\w/])(?:{p})(?![\w/])", re.IGNORECASE), route) for p, route in ROUTES]

# (pattern, code, frequency, period, period_unit, when)
FREQUENCIES: tuple[tuple[str, str, int, float, str, str | None], ...] = (
    (r"(?:every|q\.?)\s*(\d{1,2})\s*(?:-|to)\s*\d{1,2}\s*(?:h|hr|hrs|hours?)\b", "q{n}h", 1, 0, "h", None),
    (r"(?:every|q\.?)\s*(\d{1,2})\s*(?:h|hr|hrs|hours?)\b", "q{n}h", 1, 0, "h", None),
    (r"q\.?\s*(\d{1,2})\s*-\s*\d{1,2}\s*h\b", "q{n}h", 1, 0, "h", None),
    (
        r"twice (?:a |per )?da(?:y|ily)|two times (?:a |per )?day|2 times (?:a |per )?day|b\.?i\.?d\.?",
        "BID",
        2,
        1,
        "d",
        None,
    ),
    (r"three times (?:a |per )?da(?:y|ily)|3 times (?:a |per )?day|t\.?i\.?d\.?", "TID", 3, 1, "d", None),
    (r"four times (?:a |per )?da(?:y|ily)|4 times (?:a |per )?day|q\.?i\.?d\.?", "QID", 4, 1, "d", None),
    (r"every other day|q\.?o\.?d\.?|alternate days", "every_other_day", 1, 2, "d", None),
    (
        r"(?:once )?weekly|once (?:a|per|every) week|every week|q\.?\s?(?:1\s?)?wk|q\s?week",
        "weekly",
        1,
        1,
        "wk",
        None,
    ),
    (r"(?:once )?monthly|once (?:a|per|every) month|every month", "monthly", 1, 1, "mo", None),
    (
        r"every morning|each morning|in the morning|q\.?\s?a\.?m\.?|qam|before breakfast",
        "qAM",
        1,
        1,
        "d",
        "MORN",
    ),
    (
        r"every evening|each evening|in the evening|q\.?\s?p\.?m\.?|qpm|with supper|with dinner",
        "qPM",
        1,
        1,
        "d",
        "EVE",
    ),
    (
        r"at bedtime|nightly|every night|at night|q\.?\s?h\.?s\.?|qhs|before bed|\bhs\b",
        "nightly",
        1,
        1,
        "d",
        "HS",
    ),
    (
        r"once (?:a |per )?day|once daily|(?:every|each|per|a) day|daily|q\.?\s?d\.?(?!\w)|qday",
        "daily",
        1,
        1,
        "d",
        None,
    ),
    (r"continuous(?:ly)?|continuous infusion", "continuous", 1, 1, "h", None),
    (r"once|one time|single dose|x\s?1(?!\d)|stat", "once", 1, 0, "", None),
)
_FREQUENCY_PATTERNS = [
    (re.compile(rf"(?<![\w/])(?:{p})(?![\w/])", re.IGNORECASE), code, n, period, unit, when)
    for p, code, n, period, unit, when in FREQUENCIES
]
_PRN = re.compile(
    r"(?<!\w)(?:p\.?r\.?n\.?|as needed|as required|when needed|if needed|as directed for)(?!\w)", re.I
)
_DURATION = re.compile(
    r"(?:for|x|times|over)\s*(\d{1,3})\s*(days?|d|weeks?|wks?|months?|mos?)\b|until (?:\w+ ){0,3}\w+", re.I
)
_DURATION_UNITS = {"d": "d", "w": "wk", "m": "mo"}
_DOSE = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)\s*(?:-\s*\d+(?:\.\d+)?\s*)?"
    r"(mg|mcg|µg|ug|g|gm|grams?|milligrams?|micrograms?|ml|mL|meq|mEq|mmol|units?|iu|IU|u|puffs?|tablets?|tabs?|"
    r"capsules?|caps?|drops?|gtts?|sprays?|patch(?:es)?|%)(?![\w])",
    re.I,
)
_COUNT_UNITS = ("puff", "tab", "cap", "drop", "gtt", "spray", "patch")

STATUS_TRIGGERS: tuple[tuple[str, str], ...] = (
    (r"discontinu\w*|d/c'?d?|dc'?d|stop(?:ped|ping|s)?|quit|cease\w*|no longer (?:taking|on)|off", "stopped"),
    (r"hold(?:ing|s)?|held|paus\w+|suspend\w*", "held"),
    (
        r"increas\w*|decreas\w*|reduc\w*|titrat\w*|chang\w*|switch\w*|adjust\w*|uptitrat\w*|"
        r"downtitrat\w*|taper\w*|lower\w*|rais\w*|doubl\w*|halv\w*",
        "changed",
    ),
    (
        r"start\w*|begin|began|initiat\w*|add(?:ed|ing)?|new(?:ly)?|prescrib\w*|rx|trial of|commence\w*",
        "started",
    ),
    (r"continu\w*|resum\w*|remain\w* on|keep|maintain\w*|still (?:taking|on)|takes|taking|on", "active"),
)
_STATUS_PATTERNS = [
    (re.compile(rf"(?<![\w/])(?:{p})(?![\w])", re.I), status) for p, status in STATUS_TRIGGERS
]
_STATUS_NOTE = re.compile(r"\s*[(\[]([a-z][a-z ,-]{1,40})[)\]]", re.I)
_STATUS_NOTE_INSIDE = re.compile(r"[(\[]([a-z][a-z ,-]{1,40})[^)\]]*[)\]]\s*$", re.I)
_STOPPED_AFTER = re.compile(
    r"^[^;]{0,60}?(?:\bbut\b|\u2014|-|,|;)\s*(?:\w+\s+)?(?:stopped|discontinued|quit|d/c'?d)\b", re.I
)
_HYPOTHETICAL_BEFORE = re.compile(
    r"\b(?:consider\w*|if|would|could|may|might|alternatives?|instead of|not (?:on|taking|started)|"
    r"declin\w*|refus\w*|avoid\w*|never (?:took|taken|on)|denies (?:taking|use of)|intoleran\w*)\b",
    re.I,
)
_MEDICATION_END = re.compile(
    r"\s+(?:and|but)\s+(?![\d.])(?!then\b)(?=[a-z]+\s+(?:is|was|has|have|mood|she|he|they|her|his)\b)"
    r"|,\s+(?=(?:although|but|however|which|she|he|they|patient|pt)\b)|;|\n(?=\s*(?:[-*•#]|\d{1,2}[.)]|[A-Z]))"
    r"|\.\s|\.$|, then\b| then |\|| and (?=[a-z]+ \d)"
)


@dataclass
class MedicationMention:
    start: int
    end: int  # end of the whole sig
    name_end: int
    rxcui: str | None
    name: str
    combination: tuple[str, ...] = ()
    block_end: int = 0  # end of the sig with its indication ("for knee pain"): not a condition of its own


@cache
def drug_index(terms: Terminology) -> PhraseIndex:
    """Ingredient and brand names of the tables plus the abbreviations notes use."""
    names = dict(terms.drug_names)
    for abbreviation, ingredient in ABBREVIATIONS.items():
        if ingredient is not None and normalize(ingredient) in terms.drug_names:
            names.setdefault(abbreviation, terms.drug_names[normalize(ingredient)])
    return PhraseIndex(names)


def find_medication_mentions(
    layout: NoteLayout, tokens: list[Token], terms: Terminology, allergy_spans: list[tuple[int, int]]
) -> list[MedicationMention]:
    text = layout.text
    matches = [
        m
        for m in find_phrases(text, tokens, drug_index(terms))
        if layout.section_at(m.start) != "allergies" and not any(s <= m.start < e for s, e in allergy_spans)
    ]
    mentions: list[MedicationMention] = []
    skip_until = -1
    for index, match in enumerate(matches):
        if match.start < skip_until:
            continue
        rxcui = match.value
        name_end = match.end
        combination: tuple[str, ...] = ()
        # "sacubitril-valsartan", "albuterol/ipratropium": one product of two ingredients
        following = matches[index + 1] if index + 1 < len(matches) else None
        if following and text[match.end : following.start] in ("-", "/", " / ", "\u2013"):
            combination = (rxcui, following.value)
            name_end = following.end
            skip_until = following.end
        limit = (
            matches[index + 1 + bool(combination)].start
            if index + 1 + bool(combination) < len(matches)
            else len(text)
        )
        end_match = _MEDICATION_END.search(text, name_end, limit)
        line_start, line_end = layout.line_bounds(name_end)
        if text[line_start:line_end].lstrip().startswith("|"):  # a table row: the sig is the rest of the row
            sig_end = min(limit, len(text[:line_end].rstrip().rstrip("|").rstrip()))
            end_match = None
        else:
            sig_end = end_match.start() if end_match else min(limit, line_end)
        end = _trim_sig(text, name_end, sig_end)
        indication = re.match(r"\s+(?:as needed |prn )?for (?!\d)[^,;.()]*", text[end:sig_end])
        block_end = end + indication.end() if indication else end
        if _HYPOTHETICAL_BEFORE.search(text[layout.segment_at(match.start).start : match.start]):
            continue  # "would consider switching to apixaban", "if ... start X"
        ingredient_names = [terms.ingredients[c].name for c in (combination or (rxcui,))]
        mentions.append(
            MedicationMention(
                match.start,
                end,
                name_end,
                None if combination else rxcui,
                " / ".join(ingredient_names),
                combination,
                block_end,
            )
        )
    return mentions


def _trim_sig(text: str, name_end: int, end: int) -> int:
    """Cut the sig where what follows is no longer about the drug (indication, comments)."""
    sig = text[name_end:end]
    for pattern in (
        r"\s+for (?!\d)(?!the next)",
        r",\s+(?:more|which|who|because|since|but)\b",
        r"\s+because\b",
    ):
        found = re.search(pattern, sig)
        if found:
            sig = sig[: found.start()]
    sig = sig.rstrip(" ,:-")
    if sig.endswith(")") and "(" not in sig:
        sig = sig[:-1]
    return name_end + len(sig)


def medication_output(
    mention: MedicationMention, layout: NoteLayout, terms: Terminology, seen: set[str]
) -> dict[str, Any] | None:
    text = layout.text
    sig = text[mention.name_end : mention.end]
    dose = _dose(sig) if not mention.combination else None
    route = _route(text[mention.start : mention.end])
    frequency = _frequency(sig)
    status = _status(layout, mention)
    if status is None:
        status = "active"
        if (
            layout.section_at(mention.start) in ("plan", "assessment_plan")
            and _ingredient_key(mention) not in seen
        ):
            status = "started"
    key = _ingredient_key(mention)
    if dose is None and frequency is None and status == "active" and key in seen:
        return None  # "continue metformin" after the medication list: the same medication again
    seen.add(key)
    rxnorm = None
    codings: list[dict[str, str]] = []
    if mention.rxcui is not None:
        ingredient = terms.ingredients[mention.rxcui]
        rxnorm = {"system": RXNORM_SYSTEM, "code": ingredient.rxcui, "display": ingredient.name}
    for rxcui in mention.combination:
        ingredient = terms.ingredients[rxcui]
        codings.append({"system": RXNORM_SYSTEM, "code": rxcui, "display": ingredient.name, "tty": "IN"})
    return {
        "text": text[mention.start : mention.end],
        "span": [mention.start, mention.end],
        "name": mention.name,
        "rxnorm": rxnorm,
        "codings": codings,
        "dose": dose,
        "route": route,
        "frequency": frequency,
        "as_needed": bool(_PRN.search(sig)),
        "duration": _duration(sig),
        "status": status,
    }


def _ingredient_key(mention: MedicationMention) -> str:
    return mention.rxcui or "+".join(mention.combination)


def _dose(sig: str) -> dict[str, Any] | None:
    # "400 mg/5 mL" is a concentration, not a dose
    doses = [
        d
        for d in _DOSE.finditer(sig)
        if not re.match(r"\s*/\s*\d*\s*(?:ml|l|tab|cap)\b", sig[d.end() :], re.I)
        and not sig[: d.start()].rstrip().endswith("/")
    ]
    if not doses:
        return None
    counted = [d for d in doses if d.group(2).lower().startswith(_COUNT_UNITS)]
    chosen = counted[0] if counted else doses[0]
    # "49-51 mg" is a combination strength, not one dose
    if re.match(r"\d+(?:\.\d+)?\s*-\s*\d", chosen.group(0)):
        return None
    value = float(chosen.group(1).replace(",", ""))
    return {"value": int(value) if value.is_integer() else value, "unit": _ucum_dose_unit(chosen.group(2))}


def _ucum_dose_unit(unit: str) -> str:
    unit = unit.lower()
    if unit in ("mg", "milligram", "milligrams"):
        return "mg"
    if unit in ("mcg", "µg", "ug", "microgram", "micrograms"):
        return "ug"
    if unit in ("g", "gm", "gram", "grams"):
        return "g"
    if unit == "ml":
        return "mL"
    if unit in ("meq", "mmol"):
        return unit
    if unit in ("unit", "units", "u", "iu"):
        return "[iU]"
    if unit == "%":
        return "%"
    for prefix, code in (
        ("puff", "{puff}"),
        ("tab", "{tbl}"),
        ("cap", "{capsule}"),
        ("drop", "{drop}"),
        ("gtt", "{drop}"),
        ("spray", "{spray}"),
        ("patch", "{patch}"),
    ):
        if unit.startswith(prefix):
            return code
    return unit


def _route(mention_text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern, route in _ROUTE_PATTERNS:
        found = pattern.search(mention_text)
        if found and (best is None or found.start() < best[0]):
            best = (found.start(), route)
    return best[1] if best else None


def _frequency(sig: str) -> dict[str, Any] | None:
    """The earliest frequency phrase in the sig ("once" only when no other phrase is there)."""
    best: tuple[int, int, dict[str, Any]] | None = None
    for rank, (pattern, code, count, period, unit, when) in enumerate(_FREQUENCY_PATTERNS):
        found = pattern.search(sig)
        if not found:
            continue
        if code == "q{n}h":
            hours = int(found.group(1))
            value: dict[str, Any] = {
                "code": f"q{hours}h",
                "frequency": 1,
                "period": hours,
                "period_unit": "h",
            }
        elif code == "once":
            value = {"code": "once", "frequency": 1, "period": None, "period_unit": None, "count": 1}
        else:
            value = {"code": code, "frequency": count, "period": period, "period_unit": unit}
        if when:
            value["when"] = [when]
        position = found.start() if code != "once" else len(sig) + 1
        if best is None or (position, rank) < (best[0], best[1]):
            best = (position, rank, value)
    return best[2] if best else None


def _duration(sig: str) -> dict[str, Any] | None:
    found = _DURATION.search(sig)
    if not found or not found.group(1):
        return None
    unit = _DURATION_UNITS[found.group(2)[0].lower()]
    return {"value": int(found.group(1)), "unit": unit}


def _status(layout: NoteLayout, mention: MedicationMention) -> str | None:
    """From the verbs just before the drug name ("start", "stop", "increase ... to") or right after it
    ("was increased to", "discontinued")."""
    text = layout.text
    segment = layout.segment_at(mention.start)
    line_start = layout.line_bounds(mention.start)[0]
    before = text[max(segment.start, line_start, mention.start - 60) : mention.start]
    before = re.split(r"[,;:]\s|\.\s| - ", before)[-1]
    after = text[mention.name_end : min(mention.end + 25, segment.end)]
    after_words = " ".join(after.split()[:5])
    for pattern, status in _STATUS_PATTERNS:
        if pattern.search(before):
            return status
    for pattern, status in _STATUS_PATTERNS[:3]:
        if re.search(r"(?:was|were|is|been|be)\s+" + pattern.pattern, after_words, re.I):
            return status
    line_start, line_end = layout.line_bounds(mention.start)
    if text[line_start:line_end].lstrip().startswith("|"):  # a table row: its note cell ("started", "d/c'd")
        for pattern, status in _STATUS_PATTERNS[:4]:
            if pattern.search(text[mention.name_end : line_end]):
                return status
        if re.search(r"\bcompleted\b", text[mention.name_end : line_end], re.I):
            return "stopped"
    # a medication list's "(new)", "(increased)", "(stopped)" after the sig
    note = _STATUS_NOTE.match(
        text, mention.end, min(segment.end + 2, len(text))
    ) or _STATUS_NOTE_INSIDE.search(text, mention.name_end, mention.end)
    if note:
        for pattern, status in _STATUS_PATTERNS:
            if pattern.search(note.group(1)):
                return "started" if status == "started" or note.group(1).lower().startswith("new") else status
    rest_of_sentence = text[mention.name_end : segment.end]
    if _STOPPED_AFTER.search(rest_of_sentence):
        return "stopped"
    return None
