"""Vital signs and laboratory results: value, UCUM unit, LOINC, reference range and flag."""

from __future__ import annotations

import re
from typing import Any

from medical_notes.extraction.terminology import Terminology

_NUMBER = r"(\d{1,3}(?:\.\d{1,2})?)"
_LINK = r"\s*(?::|=|-|\|)?\s*(?:(?:was|is|of|at|today|now)\s+)?"
_VITAL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "blood_pressure",
        re.compile(
            r"(?<![A-Za-z])(?:BP|B/P|blood pressure|NIBP)"
            + _LINK
            + r"(\d{2,3})\s*/\s*(\d{2,3})(\s*mm\s*hg)?",
            re.I,
        ),
    ),
    (
        "heart_rate",
        re.compile(
            r"(?<![A-Za-z])(?:HR|heart rate|pulse(?: rate)?|P(?=\s*:?\s*\d))"
            + _LINK
            + r"(\d{2,3})(\s*(?:bpm|/min|beats/min))?",
            re.I,
        ),
    ),
    (
        "respiratory_rate",
        re.compile(
            r"(?<![A-Za-z])(?:RR|resp(?:iratory)? rate|respirations|resp|R(?=\s*:?\s*\d))"
            + _LINK
            + r"(\d{1,2})(\s*(?:/min|breaths/min|bpm))?",
            re.I,
        ),
    ),
    (
        "temperature",
        re.compile(
            r"(?<![A-Za-z])(?:T|Temp|temperature|Tmax)" + _LINK + r"(\d{2,3}(?:\.\d)?)"
            r"(\s*(?:°|º|deg(?:rees)?)?\s*(?:F|C)(?![A-Za-z])|\s*°)?",
            re.I,
        ),
    ),
    (
        "oxygen_saturation",
        re.compile(
            r"(?<![A-Za-z])(?:SpO2|SaO2|O2 sat(?:uration)?|sat(?:s|uration)?|pulse ox(?:imetry)?"
            r"|oxygen saturation)" + _LINK + r"(\d{2,3})(\s*%)?",
            re.I,
        ),
    ),
    (
        "weight",
        re.compile(
            r"(?<![A-Za-z])(?:Wt|weight|weighs|body weight)" + _LINK + r"(\d{2,3}(?:\.\d{1,2})?)"
            r"(\s*(?:kg|kgs|kilograms|lbs?|pounds|#))?",
            re.I,
        ),
    ),
    (
        "height",
        re.compile(
            r"(?<![A-Za-z])(?:Ht|height)" + _LINK + r"(\d{1,3}(?:\.\d{1,2})?)"
            r"(\s*(?:cm|centimeters|in|inches|m)(?![A-Za-z])|\s*(?:ft|')\s*(\d{1,2})\s*(?:in|\")?)",
            re.I,
        ),
    ),
    (
        "bmi",
        re.compile(
            r"(?<![A-Za-z])(?:BMI|body mass index)" + _LINK + r"(\d{2}(?:\.\d{1,2})?)(\s*kg/m(?:2|\^2|²))?",
            re.I,
        ),
    ),
)

VITAL_LOINC = {
    "blood_pressure": "85354-9",
    "heart_rate": "8867-4",
    "respiratory_rate": "9279-1",
    "temperature": "8310-5",
    "oxygen_saturation": "59408-5",
    "weight": "29463-7",
    "height": "8302-2",
    "bmi": "39156-5",
}
# Plausible ranges; a number outside is not that vital sign (e.g. "P 2" in another context).
_PLAUSIBLE = {
    "heart_rate": (20, 250),
    "respiratory_rate": (4, 60),
    "oxygen_saturation": (50, 100),
    "weight": (1, 700),
    "height": (20, 250),
    "bmi": (10, 80),
}


def _as_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def find_vitals(text: str) -> list[dict[str, Any]]:
    vitals: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _VITAL_PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            vital = _vital(kind, match)
            if vital is None:
                continue
            taken.append((match.start(), match.end()))
            vitals.append(vital)
    vitals.sort(key=lambda v: v["span"][0])
    return vitals


def _vital(kind: str, match: re.Match[str]) -> dict[str, Any] | None:
    span = [match.start(), match.end()]
    loinc = VITAL_LOINC[kind]
    if kind == "blood_pressure":
        systolic, diastolic = int(match.group(1)), int(match.group(2))
        if not (50 <= systolic <= 300 and 20 <= diastolic <= 200 and systolic > diastolic):
            return None
        return {
            "kind": kind,
            "loinc": loinc,
            "systolic": systolic,
            "diastolic": diastolic,
            "unit": "mm[Hg]",
            "components": [
                {"loinc": "8480-6", "name": "systolic", "value": systolic, "unit": "mm[Hg]"},
                {"loinc": "8462-4", "name": "diastolic", "value": diastolic, "unit": "mm[Hg]"},
            ],
            "span": span,
        }
    value = _as_number(match.group(1))
    written_unit = (match.group(2) or "").strip().lower().replace("°", "").replace("º", "").strip()
    unit: str
    if kind in ("heart_rate", "respiratory_rate"):
        unit = "/min"
    elif kind == "temperature":
        if written_unit.endswith("f"):
            unit = "[degF]"
        elif written_unit.endswith("c"):
            unit = "Cel"
        else:
            unit = "[degF]" if value > 50 else "Cel"
        if not (30 <= value <= 45 if unit == "Cel" else 86 <= value <= 113):
            return None
    elif kind == "oxygen_saturation":
        unit = "%"
    elif kind == "weight":
        unit = "[lb_av]" if written_unit.startswith(("lb", "pound", "#")) else "kg"
    elif kind == "height":
        if match.group(3):  # 5 ft 5 in
            value = int(match.group(1)) * 12 + int(match.group(3))
            unit = "[in_i]"
        elif written_unit.startswith(("in", '"')):
            unit = "[in_i]"
        elif written_unit == "m":
            unit = "cm"
            value = round(float(value) * 100, 1)
        else:
            unit = "cm"
        if unit == "[in_i]" and not 10 <= value <= 100:
            return None
    else:
        unit = "kg/m2"
    low_high = _PLAUSIBLE.get(kind)
    if low_high and kind != "height" and not low_high[0] <= value <= low_high[1]:
        return None
    return {"kind": kind, "loinc": loinc, "value": value, "unit": unit, "span": span}


# ---- laboratory results -------------------------------------------------------------------------
_LAB_VALUE = re.compile(
    r"\s*(?:\([^)\d]{0,20}\))?\s*(?::|=|-)?\s*(?:(?:was|is|of|at|today|now|level|value)\s+)?(?P<comparator><=|>=|<|>|≤|≥)?\s*"
    r"(?P<value>\d+(?:\.\d+)?)(?![\d/])"
    r"(?:\s*(?P<unit>[A-Za-zµ%/^*0-9.{}²_\[\]]+(?:\s?cr)?))?"
    r"(?:\s*\((?:ref(?:erence)?(?: range)?:?\s*|target\s*|goal\s*|normal\s*)?"
    r"(?:(?P<low>\d+(?:\.\d+)?)\s*[-\u2013]\s*(?P<high>\d+(?:\.\d+)?)|[<\u2264]\s*(?P<below>\d+(?:\.\d+)?)"
    r"|[>\u2265]\s*(?P<above>\d+(?:\.\d+)?))[^)]*\))?"
    r"(?:\s*\(?(?P<flag>H|L|HH|LL|high|low|abnormal|normal|N)\)?(?![A-Za-z]))?"
)
_FLAGS = {"h": "H", "hh": "H", "high": "H", "l": "L", "ll": "L", "low": "L", "n": "N", "normal": "N"}


def _lab_alias_pattern(terms: Terminology) -> re.Pattern[str]:
    aliases = sorted(terms.lab_aliases, key=len, reverse=True)
    body = "|".join(r"[\s/-]+".join(re.escape(word) for word in alias.split()) for alias in aliases)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])", re.I)


_ALIAS_PATTERNS: dict[int, re.Pattern[str]] = {}


def find_labs(text: str, terms: Terminology, vital_spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
    pattern = _ALIAS_PATTERNS.get(id(terms))
    if pattern is None:
        pattern = _ALIAS_PATTERNS[id(terms)] = _lab_alias_pattern(terms)
    labs: list[dict[str, Any]] = []
    for match in pattern.finditer(text):
        alias = match.group(0)
        if len(alias) <= 3 and alias.islower():
            continue  # "k", "na", "mg" in lower case are words or units, not lab names
        if any(start <= match.start() < end for start, end in vital_spans):
            continue
        key = " ".join(re.findall(r"[a-z0-9]+(?:'s)?", alias.lower().replace("-", " ")))
        code = terms.lab_aliases.get(key)
        if code is None:
            continue
        value = _LAB_VALUE.match(text, match.end())
        if value is None:
            continue
        if re.match(r"\s*(?:in|x|for|every)\s", text[match.end() : match.end() + 6]):
            continue
        entry = terms.loinc[code]
        if code == "2345-7" and re.search(
            r"fasting\s*$", text[max(0, match.start() - 12) : match.start()], re.I
        ):
            entry = terms.loinc["1558-6"]
        labs.append(_lab(text, match, value, entry.code, entry.name, entry.display, terms))
    return labs


def _lab(
    text: str,
    name: re.Match[str],
    value: re.Match[str],
    code: str,
    canonical: str,
    display: str,
    terms: Terminology,
) -> dict[str, Any]:
    number = _as_number(value.group("value"))
    unit = _lab_unit(value.group("unit"), terms)
    end = value.end()
    if value.group("unit") and unit is None:
        end = value.end("value")
    low = value.group("low")
    high = value.group("high")
    flag_text = value.group("flag")
    if unit is None and value.group("unit") and (low or flag_text):
        end = value.end()
    below, above = value.group("below"), value.group("above")
    reference_range = None
    if low and high:
        reference_range = {"low": _as_number(low), "high": _as_number(high), "text": f"{low}-{high}"}
    elif below:
        reference_range = {"low": None, "high": _as_number(below), "text": f"<{below}"}
    elif above:
        reference_range = {"low": _as_number(above), "high": None, "text": f">{above}"}
    flag = _FLAGS.get(flag_text.lower()) if flag_text else None
    if flag is None and reference_range:
        low_limit, high_limit = reference_range["low"], reference_range["high"]
        flag = "L" if low_limit is not None and number < low_limit else "N"
        if high_limit is not None and number > high_limit:
            flag = "H"
    return {
        "name": canonical,
        "loinc": code,
        "display": display,
        "value": number,
        "comparator": value.group("comparator"),
        "unit": unit,
        "reference_range": reference_range,
        "flag": flag,
        "text": text[name.start() : end].rstrip(" .,;"),
        "span": [name.start(), name.start() + len(text[name.start() : end].rstrip(" .,;"))],
    }


def _lab_unit(unit: str | None, terms: Terminology) -> str | None:
    if not unit:
        return None
    spelled = unit.strip().lower().rstrip(".,")
    return terms.ucum.get(spelled)
