"""Vital signs and laboratory results: value, UCUM unit, LOINC, reference range and flag."""

from __future__ import annotations

import re
from typing import Any

from medical_notes.extraction.terminology import Terminology

_LINK = r"\s*(?::|=|-|\|)?\s*(?:(?:was|is|of|at|today|now)\s+)?"
_VITAL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "blood_pressure",
        re.compile(
            r"(?<![A-Za-z])(?:BP|B/P|blood pressure|NIBP"
            r"|(?<![A-Za-z])(?:VS|V/S|vitals?(?: at d/?c)?)(?=\s*:?\s*\d+/))"
            + _LINK
            + r"(\d{2,3})\s*/\s*(\d{2,3})(\s*mm\s*hg)?",
            re.I,
        ),
    ),
    (
        "heart_rate",
        re.compile(
            r"(?<![A-Za-z0-9])(?:(?-i:HR|Hr)|heart rate|pulse(?: rate)?|P(?=\s*:?\s*\d))"
            + _LINK
            + r"(\d{2,3})(?!\d|\.\d)(?!\s*[-\u2013]\s*\d)(?!\s*(?:g|mg|mL)\b)(\s*(?:bpm|/min|beats/min))?",
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
    (  # "98.4 F" on a vitals line: a temperature without its label
        "temperature",
        re.compile(
            r"(?:^|(?<=, )|(?<=\| )|(?<=: )|(?<=  ))(\d{2,3}\.\d)(\s*(?:°|º)?\s*(?:F|C))(?![A-Za-z])", re.M
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
    (  # "98% RA", "93% on 2L NC" on a vitals line: a saturation without its label
        "oxygen_saturation",
        re.compile(
            r"(?<![\w.%/])(\d{2,3})(\s*%)(?=\s*(?:on\s+)?(?:RA\b|room air|\d+(?:\.\d)?\s*L\b|NC\b"
            r"|nasal cannula|NRB\b|HFNC\b|high[- ]flow|BiPAP\b|CPAP\b|FiO2))",
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
            r"(?<![A-Za-z])(?<!fundal )(?:Ht|height)" + _LINK + r"(\d{1,3}(?:\.\d{1,2})?)"
            r"(\s*(?:cm|centimeters|in|inches|m)(?![A-Za-z])|\s*(?:ft|')\s*(\d{1,2})\s*(?:in|\")?)",
            re.I,
        ),
    ),
    (
        "bmi",
        re.compile(
            r"(?<![A-Za-z])(?<!pregravid )(?<!pre-pregnancy )(?<!prepregnancy )(?:BMI|body mass index)"
            + _LINK
            + r"(\d{2}(?:\.\d{1,2})?)(\s*kg/m(?:2|\^2|²))?",
            re.I,
        ),
    ),
)

# A second reading that follows the first: "BP 146/88, rpt 138/84", "138/74 sitting, 126/70 standing",
# "Tmax 38.9, now 37.8", "SpO2 93% RA -> 97% after neb", "Wt 81.2 kg (admit 78 kg)".
_FOLLOW_UPS: dict[str, re.Pattern[str]] = {
    "blood_pressure": re.compile(
        r"(?:\s*(?:sitting|standing|supine|lying|seated|[LR] arm))?\s*(?:\([^)\n]{0,20}\))?"
        r"\s*(?:,|;|->|\u2192)?\s*(?:(?:rpt|repeat|recheck(?:ed)?|then|now|and)\s*:?\s*)?(\d{2,3})\s*/\s*(\d{2,3})(\s*mm\s*hg)?",
        re.I,
    ),
    "temperature": re.compile(
        r"\s*(?:,|;|->|\u2192)?\s*(?:now|then|current(?:ly)?)\s*:?\s*(\d{2,3}(?:\.\d)?)"
        r"(\s*(?:°|º|deg(?:rees)?)?\s*(?:F|C)(?![A-Za-z])|\s*°)?",
        re.I,
    ),
    "oxygen_saturation": re.compile(
        r"(?:\s*(?:on\s+)?(?:RA|room air|\d+(?:\.\d)?\s*L(?:\s*NC)?))?\s*(?:,|;|->|\u2192)\s*"
        r"(?:(?:weaned to|now|then|up to|down to)\s+(?:[^,;|\n\d]{0,20},\s*)?)?(\d{2,3})(\s*%)",
        re.I,
    ),
    "weight": re.compile(
        r"\s*\((?:on\s+)?(?:admit|admission|at admission)\s*(?:wt|weight)?\s*:?\s*(\d{2,3}(?:\.\d{1,2})?)"
        r"(\s*(?:kg|kgs|lbs?|pounds))",
        re.I,
    ),
}

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
            follow = _FOLLOW_UPS.get(kind)
            position = match.end()
            while follow is not None and (after := follow.match(text, position)):
                reading = _vital(kind, after)
                if reading is None or any(after.start(1) < e and s < after.end() for s, e in taken):
                    break
                reading["span"] = [after.start(1), after.end()]
                taken.append((after.start(1), after.end()))
                vitals.append(reading)
                position = after.end()
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
    r"\s*(?:\([^)\d]{0,20}\)|\((?=[^)\n]*(?:\d+/\d+|\d+-?h\b|trough|peak|random))[^)\n]{0,30}\))?"
    r"\s*(?::|=|-|\|)?\s*(?:--[ \t]+)*(?:(?:was|is|of|at|today|now|level|value|stable|peaked at|"
    r"peak|down to|up to|trended to|improved to|on arrival)\s+)?(?:(?:[01]?\d|2[0-3]):[0-5]\d[ \t]+)?"
    r"(?:(?:\d{1,2}/\d{1,2}(?:/\d{2,4})?|\d{1,2}\s*h(?:r|rs)?)\s*:\s*)?"
    r"(?P<comparator><=|>=|<|>|≤|≥|~)?\s*"
    r"(?P<value>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?)(?![\d/])"
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
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?"
# Further values of the same test after the first: a trend ("6.8 -> 9.2"), an earlier value in
# parentheses ("14.6 (18.9)", "(was 4.6 on admit)", "(baseline 12)"), or the next column of a table row.
_MORE_VALUE = re.compile(
    rf"(?:\s*(?:->|-->|→|=>|>)\s*|[ \t]{{2,}}(?:--[ \t]+)*"
    rf"|[ \t]*\|[ \t]*(?:(?:[01]?\d|2[0-3]):[0-5]\d|\d{{1,2}}\s*h(?:r|rs)?\s*:)[ \t]*"
    rf"|,[ \t]*(?=(?:{_NUM})[ \t]+(?:peak|nadir|at|on|today|yesterday|now)\b)"
    rf"|;[ \t]*(?:peak|nadir|baseline|was|prev|pre-?op|post-?op|prior|last)\b:?[ \t]*~?[ \t]*"
    rf"(?=(?:{_NUM})[^)\n]{{0,25}}\))"
    rf"|(?:[ \t]+[a-z]+){{0,2}}\s*\("
    rf"(?:was|prev(?:ious(?:ly)?)?\.?|from|baseline|admit|on admit|adm(?:ission)?|initially|peak|nadir"
    rf"|pre-?op|post-?op|prior|last)?:?\s*~?\s*"
    rf"(?=(?:{_NUM})(?![\d/.])[^)\n]{{0,25}}\)))"
    rf"(?P<value>{_NUM})(?![\d/])(?:[ \t]*(?P<unit>[A-Za-zµ%/^*0-9.{{}}²_\[\]]+))?(?:[^);\n]{{0,25}}\))?"
)
# A result written as a target or goal ("A1c goal <7", "goal LDL <70") is not a result.
_TARGET_BEFORE = re.compile(
    r"\b(?:goal|target|aim|keep|maintain)\s*(?:of|for|is|:)?\s*(?:an?\s+|the\s+)?$", re.I
)
_TARGET_AFTER = re.compile(r"\s*(?:goal|target)\b", re.I)
_BLOOD_GAS = re.compile(
    r"(?<![A-Za-z])(?P<kind>ABG|VBG|blood gas|art(?:erial)? gas|ven(?:ous)? gas)\b[^\n]{0,25}?"
    r"(?P<ph>[67]\.\d{1,2})\s*/\s*(?P<pco2>\d{2,3})\s*/\s*(?P<po2>\d{2,3})"
    r"(?:\s*/\s*(?:HCO3\s*)?(?P<hco3>\d{1,2}(?:\.\d)?))?"
)
_BASE_EXCESS = re.compile(
    r"(?<![A-Za-z])(?:BE|base excess)\s*:?\s*(?P<value>[+\-\u2212]?\s?\d{1,2}(?:\.\d)?)"
)
_LOWER_CASE_OK = frozenset(
    {"wbc", "plt", "hgb", "hct", "bun", "inr", "ldl", "hdl", "tsh", "bnp", "anc", "crp", "esr", "ptt", "a1c"}
)
_COUNT_CODES = ("6690-2", "777-3", "751-8")
_DOSE_UNITS = frozenset({"mg", "g", "ug", "mL", "[iU]", "meq", "mmol", "{tbl}", "{capsule}"})


def find_labs(text: str, terms: Terminology, vital_spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
    pattern = _ALIAS_PATTERNS.get(id(terms))
    if pattern is None:
        pattern = _ALIAS_PATTERNS[id(terms)] = _lab_alias_pattern(terms)
    labs: list[dict[str, Any]] = []
    gas_spans: list[tuple[int, int]] = []
    for gas in _BLOOD_GAS.finditer(text):
        labs.extend(_blood_gas(text, gas, terms))
        line_end = text.find("\n", gas.end())
        gas_spans.append((gas.start(), gas.end()))
        excess = _BASE_EXCESS.search(text, gas.end(), line_end if line_end >= 0 else len(text))
        if excess:
            value = excess.group("value").replace(" ", "").replace("\u2212", "-")
            labs.append(
                _simple_lab(terms, "1925-7", float(value) if "." in value else int(value), "meq/L", excess)
            )
            gas_spans.append((excess.start(), excess.end()))
    for lab, span in _slash_lists(text, pattern, terms):
        labs.append(lab)
        gas_spans.append(span)
    for match in pattern.finditer(text):
        alias = match.group(0)
        if len(alias) <= 3 and alias.islower() and alias not in _LOWER_CASE_OK:
            continue  # "k", "na", "mg" in lower case are words or units, not lab names
        if any(start <= match.start() < end for start, end in [*vital_spans, *gas_spans]):
            continue
        key = " ".join(re.findall(r"[a-z0-9]+(?:'s)?", alias.lower().replace("-", " ")))
        code = terms.lab_aliases.get(key)
        if code is None:
            continue
        value = _LAB_VALUE.match(text, match.end())
        if value is None:
            continue
        if re.match(r"\s*(?:[MF]|yo|y/?o|years?|yrs?)\b", text[value.end("value") : value.end("value") + 8]):
            continue  # "Pt: 84F", "pt 68 yo": an age, not a result
        if _is_threshold(text, match.start(), value):
            continue  # "hold if ANC <1,000", "treat any glucose <70", "BG 151-200 -> +1 unit": not a result
        if re.match(r"\s*(?:in|x|for|every)\s", text[match.end() : match.end() + 6]):
            continue
        if _TARGET_BEFORE.search(text[max(0, match.start() - 20) : match.start()]) or _TARGET_AFTER.match(
            text, value.end()
        ):
            continue
        entry = terms.loinc[code]
        gas_code = _gas_code(text, match.start(), code)
        if gas_code != code and gas_code in terms.loinc:
            code, entry = gas_code, terms.loinc[gas_code]
        if code == "2345-7" and re.search(
            r"fasting\s*$", text[max(0, match.start() - 12) : match.start()], re.I
        ):
            entry = terms.loinc["1558-6"]
        lab = _lab(text, match, value, entry.code, entry.name, entry.display, terms)
        if lab["unit"] in _DOSE_UNITS:
            continue  # "iron 325 mg", "lithium 300 mg": a dose, not a result
        chain = [lab]
        position = value.end() if lab["unit"] or not value.group("unit") else value.end("value")
        while True:
            more = _MORE_VALUE.match(text, position)
            if more is None or more.end() == position:
                break
            number = _as_number(more.group("value").replace(",", ""))
            unit = _lab_unit(more.group("unit"), terms, code) if more.group("unit") else None
            end = more.end() if unit or not more.group("unit") else more.end("value")
            chain.append(
                {
                    **lab,
                    "value": number,
                    "comparator": None,
                    "unit": unit,
                    "reference_range": None,
                    "flag": None,
                    "text": text[more.start("value") : end].strip(),
                    "span": [more.start("value"), end],
                }
            )
            position = end
        written = next((item["unit"] for item in reversed(chain) if item["unit"]), None)
        for item in chain:
            item["unit"] = _default_unit(entry, item["unit"] or written, item["value"])
            if item["unit"] in ("ug/mL", "ng/mL") and entry.code == "48065-7":
                item["unit"] += "{FEU}"
            if entry.code == "3150-0" and isinstance(item["value"], float) and item["value"] <= 1:
                item["value"] = round(item["value"] * 100)  # FiO2 0.45 = 45 %
        labs.extend(chain)
    unique: dict[tuple[str, Any], dict[str, Any]] = {}
    for lab in labs:
        if lab["loinc"] == "3150-0":  # the same FiO2 written twice ("FiO2 45%", "on FiO2 0.45")
            unique.setdefault((lab["loinc"], lab["value"]), lab)
        else:
            unique[(str(lab["span"]), lab["loinc"])] = lab
    return sorted(unique.values(), key=lambda lab: lab["span"][0])


_CRITERION_WORDS = re.compile(
    r"\b(?:if|any|treat|hold|call|when|unless|until|criteria|parameters?|goal|keep|return|dosing|avoid)\b",
    re.I,
)


# On a line that opens "VBG:" or "ABG 0430:", pH, pCO2 and HCO3 are that gas's, not the defaults.
_GAS_LINE = re.compile(r"\b(?P<kind>ABG|VBG|arterial|venous|art(?:erial)? gas|ven(?:ous)? gas)\b", re.I)
_ARTERIAL_TO_VENOUS = {"2744-1": "2746-6", "2019-8": "2021-4", "1960-4": "14627-4", "2028-9": "14627-4"}


def _gas_code(text: str, position: int, code: str) -> str:
    if code not in _ARTERIAL_TO_VENOUS:
        return code
    line_start = text.rfind("\n", 0, position) + 1
    kind = _GAS_LINE.search(text, line_start, position)
    if kind is None:
        return code
    if kind.group("kind").lower().startswith(("v", "ven")):
        return _ARTERIAL_TO_VENOUS[code]
    return "1960-4" if code == "2028-9" else code


def _is_threshold(text: str, name_start: int, value: re.Match[str]) -> bool:
    """A criterion, a threshold or a range of a scale, not a measured result."""
    if re.match(r"[ \t]*[-\u2013][ \t]*\d", text[value.end("value") : value.end("value") + 6]):
        return not value.group("unit") and value.group("low") is None
    comparator = value.group("comparator")
    if comparator is None or comparator == "~":
        return False
    if comparator in (">=", "<=", "\u2265", "\u2264"):
        return True
    clause_start = max(text.rfind(c, 0, name_start) for c in ".;\n(")
    clause = text[clause_start + 1 : name_start]
    if _CRITERION_WORDS.search(clause):
        return True
    if text[clause_start : clause_start + 1] == "(":  # "(age <80, wt >60 kg, Cr <1.5)": a list of criteria
        close = text.find(")", name_start)
        inner = text[clause_start : close if close > 0 else name_start + 40]
        return len(re.findall(r"[<>\u2264\u2265]", inner)) >= 2 or bool(re.match(r"\(\s*\w+\s*[<>]", inner))
    return False


_SLASH_LISTS: dict[int, re.Pattern[str]] = {}


def _slash_lists(
    text: str, pattern: re.Pattern[str], terms: Terminology
) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """ "Total chol / LDL / HDL / TG | 222 / 142 / 48 / 160": names and values in the same order."""
    lists = _SLASH_LISTS.get(id(terms))
    if lists is None:
        name = pattern.pattern
        lists = _SLASH_LISTS[id(terms)] = re.compile(
            rf"(?P<names>{name}(?:[ \t]*/[ \t]*{name})+)[ \t]*(?:[:|=][ \t]*|[ \t]+)(?:\|[ \t]*)?"
            rf"(?P<values>(?:{_NUM})(?:[ \t]*/[ \t]*(?:{_NUM}))+)(?![\d/])",
            re.I,
        )
    found: list[tuple[dict[str, Any], tuple[int, int]]] = []
    for match in lists.finditer(text):
        names = list(pattern.finditer(text, match.start("names"), match.end("names")))
        values = list(re.finditer(_NUM, text[match.start("values") : match.end("values")]))
        if len(names) != len(values):
            continue
        for name, value in zip(names, values, strict=True):
            key = " ".join(re.findall(r"[a-z0-9]+(?:'s)?", name.group(0).lower().replace("-", " ")))
            code = terms.lab_aliases.get(key)
            if code is None:
                break
            entry = terms.loinc[code]
            start = match.start("values") + value.start()
            number = _as_number(value.group(0).replace(",", ""))
            found.append(
                (
                    {
                        "name": entry.name,
                        "loinc": code,
                        "display": entry.display,
                        "value": number,
                        "comparator": None,
                        "unit": _default_unit(entry, None, number),
                        "reference_range": None,
                        "flag": None,
                        "text": value.group(0),
                        "span": [start, start + len(value.group(0))],
                    },
                    (name.start(), name.end()),
                )
            )
    return found


def _default_unit(entry: Any, unit: str | None, value: float) -> str | None:
    """The unit written, else the test's usual unit ("WBC 4,820" is per uL, "WBC 4.8" thousands per uL)."""
    if entry.code in _COUNT_CODES and value >= 1000 and unit in (None, "10*3/uL"):
        return "/uL"
    if entry.code == "2164-2" and unit == "mL/min/{1.73_m2}":
        return "mL/min"
    return unit or entry.unit


def _simple_lab(
    terms: Terminology, code: str, value: float, unit: str, match: re.Match[str]
) -> dict[str, Any]:
    entry = terms.loinc[code]
    return {
        "name": entry.name,
        "loinc": code,
        "display": entry.display,
        "value": value,
        "comparator": None,
        "unit": unit,
        "reference_range": None,
        "flag": None,
        "text": match.group(0).strip(),
        "span": [match.start(), match.end()],
    }


def _blood_gas(text: str, gas: re.Match[str], terms: Terminology) -> list[dict[str, Any]]:
    """ "ABG 7.36 / 44 / 82 / HCO3 24": pH, pCO2, pO2 (and bicarbonate) of an arterial or venous gas."""
    venous = gas.group("kind").lower().startswith(("vbg", "ven"))
    parts = [
        ("ph", "2746-6" if venous else "2744-1", "[pH]"),
        ("pco2", "2021-4" if venous else "2019-8", "mm[Hg]"),
        ("po2", None if venous else "2703-7", "mm[Hg]"),
        ("hco3", "1960-4" if not venous else "1963-8", "meq/L"),
    ]
    labs = []
    for group, code, unit in parts:
        raw = gas.group(group)
        if raw is None or code is None or code not in terms.loinc:
            continue
        entry = terms.loinc[code]
        labs.append(
            {
                "name": entry.name,
                "loinc": code,
                "display": entry.display,
                "value": _as_number(raw),
                "comparator": None,
                "unit": unit,
                "reference_range": None,
                "flag": None,
                "text": raw,
                "span": [gas.start(group), gas.end(group)],
            }
        )
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
    number = _as_number(value.group("value").replace(",", ""))
    unit = _lab_unit(value.group("unit"), terms, code)
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
    if flag_text is None and value.group("unit") in ("L", "H"):  # "Hgb 11.4 L": a flag, not litres
        flag_text = value.group("unit")
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
        "comparator": None if value.group("comparator") == "~" else value.group("comparator"),
        "unit": unit,
        "reference_range": reference_range,
        "flag": flag,
        "text": text[name.start() : end].rstrip(" .,;"),
        "span": [name.start(), name.start() + len(text[name.start() : end].rstrip(" .,;"))],
    }


def _lab_unit(unit: str | None, terms: Terminology, code: str | None = None) -> str | None:
    if not unit:
        return None
    if unit.strip() in ("L", "H", "in"):  # "Hgb 11.4 L" (low), "7.6 in 10/25": no unit
        return None
    spelled = unit.strip().lower().rstrip(".,")
    if spelled == "k":  # "plt 245K" (but "Na 137 K 4.1" is the next test)
        return "10*3/uL" if code in _COUNT_CODES else None
    return terms.ucum.get(spelled)
