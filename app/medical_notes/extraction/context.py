"""Everything around the clinical findings: allergies, family history, procedures, plan, patient and
encounter."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from medical_notes.extraction.note_type import encounter_class, note_type
from medical_notes.extraction.terminology import ICD10CM_SYSTEM, RXNORM_SYSTEM, Terminology, normalize
from medical_notes.extraction.text import NoteLayout

# ---- allergies ----------------------------------------------------------------------------------
_NO_ALLERGIES = re.compile(r"\b(?:NKDA|NKA|no known (?:drug )?allergies|no allergies)\b", re.I)
_ALLERGY_LEAD = re.compile(
    r"(?:\ballerg(?:ies|y)\b(?:\s*/\s*\w+)?(?:\s+(?:to|list|history))?(?:\s*\([^)\n]{0,20}\))?"
    r"|\ballergic to\b|\bintolerant (?:of|to)\b|\bintoleranc(?:e|es) to\b|\bintoleranc(?:e|es)(?=\s*:))"
    r"[ \t]*[:\-\u2014]?[ \t]*(?:\n(?![ \t]*(?:[-*\u2022]|\d{1,2}[.)])[ \t])[ \t]*)?",
    re.I,
)
# Short headings at the start of a line or sentence: "All: codeine", "ALL: sulfa", "Intol: atorvastatin"
_SHORT_LEAD = re.compile(r"(?:^|(?<=[.;] ))[ \t]*(?:ALL|All|INTOL|Intol)[ \t]*:[ \t]*", re.M)
_ALLERGY_ITEM_SPLIT = re.compile(r",(?![^()]*\))(?!\s*(?:which|that|causing|with|leading))\s*|;\s*")
# "nausea and confusion" after the allergen's dash or arrow is one reaction list, not two allergens
_REACTION_STARTED = re.compile(r"->|\u2192|\s[-\u2014:]\s")
# "Allergies:", "Allergy list -", "allergic to", "allergy to": an allergy statement, not a passing word
_ALLERGY_STATEMENT = re.compile(
    r"(?:allergic|intoleran\w*)\b|allerg\w*\s+to\b"
    r"|allerg\w*(?:\s*/\s*\w+)?(?:\s+\w+)?(?:\s*\([^)]*\))?[ \t]*[:\-\u2014]|(?:ALL|All|INTOL|Intol)\s*:",
    re.I,
)
_LIST_BELOW = re.compile(r"(?:\n[ \t]*(?:[-*\u2022]|\d{1,2}[.)])[ \t]+[^\n]+)+")
_LIST_LINE = re.compile(r"\n[ \t]*(?:[-*\u2022]|\d{1,2}[.)])[ \t]+([^\n]+)")
# "PCN-hives": the hyphen before a reaction separates; "sulfamethoxazole-trimethoprim" is one substance
_REACTION_WORD = (
    r"(?:hives|rash|itch|swelling|anaphylaxis|nausea|n/v|vomit|angioedema|sjs|cough|myalg|diarrh|gi\b)"
)
_REACTION = re.compile(
    rf"^(?P<substance>(?:[^()\-—:>\u2192]|(?<=[A-Za-z])-(?=[A-Za-z])(?!{_REACTION_WORD}))+?)"
    r"\s*(?:\((?P<paren>[^)]+)\)\s*)?"
    rf"(?:(?:->|\u2192|(?<![A-Za-z])-|-(?![A-Za-z])|-(?={_REACTION_WORD})|[—:])\s*(?P<dash>.+)|"
    r",?\s*(?:which causes?|causes?|"
    r"causing|caused|leads to|with|reaction:?)\s+(?P<verb>.+))?$",
    re.I,
)
# The sentences of an allergy line: "PCN (hives), sulfa - rash. Latex." (not ended by a period in "(...)")
_SENTENCE = re.compile(r"(?:\([^)\n]*\)|[^.(\n])+(?:\.(?=\s|$)|$)")
# A later sentence that opens another heading ("Meds on admission: ...") ends the allergy statement.
_HEADING_START = re.compile(r"^\s*[A-Za-z][\w /&'-]{0,30}:")


@dataclass(frozen=True)
class AllergyItem:
    start: int
    end: int
    substance: str
    reaction: str | None
    verification: str = "confirmed"


# An allergy the note doubts ("codeine? per pt", "possible sulfa allergy", "PCN - unclear") is unconfirmed.
_UNCONFIRMED = re.compile(
    r"\?|\b(?:possible|possibly|maybe|unclear|uncertain|questionable|unsure|not sure|unknown reaction|"
    r"reported|per (?:pt|patient|mom|dad|mother|father|parents?|family|daughter|son|wife|husband)|"
    r"unverified|unconfirmed|suspected)\b",
    re.I,
)
# A clause saying the drug was tolerated or caused no reaction is never an allergy, wherever it sits.
_NOT_ALLERGY_CLAUSE = re.compile(
    r"\btolerat(?:ed|es|ing)\b|\bwithout (?:any |a )?(?:reaction|issues?|problems?|incident)\b"
    r"|\bno (?:further |adverse )?(?:reaction|problems?|issues?)\b|\bnot (?:a )?(?:true )?allerg"
    r"|\bnot an allergy\b|\bde-?label",
    re.I,
)
_NOT_ALLERGY = re.compile(
    r"^\s*(?:no\s+\w|tolerat(?:ed|es)\b|"
    r"(?:has\s+)?taken\s+\w+\s+without\b)",
    re.I,
)
_NOT_SUBSTANCE = re.compile(
    r"^(?:per|pt|patient|otherwise|unconfirmed|unclear|unknown|confirmed|avoid|none|see|as|since|but|not|"
    r"reports?|states?|says|family|mom|dad)\b",
    re.I,
)
# A clause after an allergen that doubts it ("per mom", "unclear if reaction") makes it unconfirmed.
_HEDGE_CLAUSE = re.compile(
    r"^[\s\"'\u201c]*(?:per|pt|unclear|unsure|not sure|unconfirmed|uncertain|unknown if)\b", re.I
)
# "loose stools, not an allergy", "nausea only, side effect", "intolerance, not allergy": no allergy here
_NOT_ALLERGY_STATEMENT = re.compile(r"\bnot (?:an? )?(?:true )?allerg|\bside effect\b", re.I)
_HEDGE = re.compile(r"^(?:maybe|possibly|possible|probably|questionable|\?)\s*", re.I)
_CHILDHOOD = re.compile(r"\s+(?:as an? (?:kid|child|baby|teen|infant)|in childhood|at age \d+)$", re.I)
# Allergies in prose: "broke out in hives after Bactrim", "got a rash from amoxicillin"
_REACTION_AFTER = re.compile(
    r"\b(?:broke out in|developed|got|had|with)\s+(?:a\s+|an\s+)?"
    r"(?P<reaction>hives|(?:diffuse |a )?rash|angioedema|anaphylaxis|lip swelling|throat swelling|wheezing)"
    r"\s+(?:after|from|with|to)\s+(?:taking\s+|starting\s+|getting\s+)?(?:a\s+|an\s+|the\s+|his\s+|her\s+)?"
    r"(?P<substance>[A-Za-z][\w-]{2,}(?:\s*/\s*[A-Za-z][\w-]{2,})?)",
    re.I,
)
_PROSE_NOT_DRUG = re.compile(
    r"^(?:eating|being|exposure|surgery|that|this|it|the|a|an|his|her|their|school|work|dinner|lunch|"
    r"breakfast|sun|heat|exercise|showering|bathing|contact|swimming|\w+ing)$",
    re.I,
)


def find_allergies(layout: NoteLayout) -> list[AllergyItem]:
    text = layout.text
    items: list[AllergyItem] = []
    leads = sorted([*_ALLERGY_LEAD.finditer(text), *_SHORT_LEAD.finditer(text)], key=lambda m: m.start())
    for lead in leads:
        if re.search(r"\b(?:no|denies|without)\s+$", text[max(0, lead.start() - 12) : lead.start()], re.I):
            continue
        if not _ALLERGY_STATEMENT.search(lead.group(0)):
            continue  # "seasonal allergies", "allergy season": not a list of allergens
        line_end = layout.line_bounds(lead.end())[1]
        line = text[lead.end() : line_end]
        if not re.search(r"[:\-\u2014]", lead.group(0)):  # "allergic to X", "intolerance to X" in prose
            line = re.split(r"[;.](?=\s|$)", line)[0]
        if not line.strip():  # "Allergies:" with the list on the next lines
            listed = _LIST_BELOW.match(text, line_end)
            if listed:
                for item in _LIST_LINE.finditer(listed.group(0)):
                    items.extend(_allergy_items(text, line_end + item.start(1), item.group(1)))
            continue
        for number, sentence in enumerate(_SENTENCE.finditer(line)):
            body = sentence.group(0)
            stripped = body.strip().rstrip(".").strip()
            if not stripped:
                continue
            if number and _HEADING_START.match(body):
                break  # "NKDA. Meds on admission: ...": the allergy statement is over
            if _NO_ALLERGIES.match(stripped) or stripped.lower().startswith(("none", "nkda", "nka")):
                continue  # "NKDA. (Lamictal - rash?)", "none to meds. Shellfish"
            offset = lead.end() + sentence.start()
            if stripped.startswith("(") and stripped.endswith(")"):  # "(Lamictal - rash? 2017, ...)"
                inner = body.index("(") + 1
                offset += inner
                body = body[inner : body.rindex(")")]
            items.extend(_allergy_items(text, offset, body))
    items.extend(_prose_allergies(text))
    unique: dict[tuple[int, int], AllergyItem] = {}
    names: set[str] = set()
    for item in items:
        if item.substance.lower() in names:
            continue  # the allergen again in the plan or the history
        names.add(item.substance.lower())
        if any(s <= item.start < e or item.start <= s < item.end for s, e in unique):
            continue
        unique.setdefault((item.start, item.end), item)
    return list(unique.values())


def _prose_allergies(text: str) -> list[AllergyItem]:
    """ "broke out in hives after Bactrim": an allergy stated in the history, not under a heading."""
    items: list[AllergyItem] = []
    for match in _REACTION_AFTER.finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        if re.search(r"\b(?:no|denies|denied|without|never)\b[^.;\n]*$", before, re.I):
            continue  # "no hives with amoxicillin"
        substance = match.group("substance")
        if _PROSE_NOT_DRUG.match(substance):
            continue
        sentence_end = re.search(r"[.;\n]", text[match.end() :])
        rest = text[match.end() : match.end() + (sentence_end.start() if sentence_end else 80)]
        if _NOT_ALLERGY_CLAUSE.search(rest):
            continue
        verification = "unconfirmed" if _UNCONFIRMED.search(before + match.group(0)) else "confirmed"
        start = match.start("substance")
        items.append(
            AllergyItem(start, start + len(substance), substance, match.group("reaction"), verification)
        )
    return items


def _split_items(body: str) -> list[str]:
    parts: list[str] = []
    for part in _ALLERGY_ITEM_SPLIT.split(body):
        pieces = re.split(r"(\s+and\s+)", part)
        current = pieces[0]
        for joiner, piece in zip(pieces[1::2], pieces[2::2], strict=True):
            if _REACTION_STARTED.search(current) or re.match(r"[^()]*\)", piece):
                current += joiner + piece  # "Morphine -> nausea and confusion"
            else:
                parts.append(current)
                current = piece
        parts.append(current)
    return parts


def _allergy_items(text: str, offset: int, body: str) -> list[AllergyItem]:
    """The allergens (with reactions) of one allergy statement starting at text[offset]."""
    items: list[AllergyItem] = []
    # "(has tolerated cefazolin since without reaction)": blank the clause out, keeping offsets
    body = re.sub(
        r"\([^()]*\)",
        lambda m: " " * len(m.group(0)) if _NOT_ALLERGY_CLAUSE.search(m.group(0)) else m.group(0),
        body,
    )
    if _NOT_ALLERGY_STATEMENT.search(body):
        return items
    position = 0
    for part in _split_items(body):
        part_start = body.find(part, position)
        position = part_start + len(part)
        if items and _HEDGE_CLAUSE.match(part):  # "PCN - rash, per mom": the allergen before is doubtful
            items[-1] = replace(items[-1], verification="unconfirmed")
            continue
        item = part.strip(" .")
        if item.count(")") > item.count("("):
            item = item.replace(")", "").strip()
        item = item.strip(" .\"'\u201c\u201d")
        if len(item) < 3 or not item[0].isalpha() or item.lower() in ("rash", "hives"):
            continue
        if _NOT_ALLERGY.search(item) or _NOT_ALLERGY_CLAUSE.search(item) or _NOT_SUBSTANCE.match(item):
            continue  # "no hives with PCN", "tolerated amoxicillin", "per mom": not an allergen
        match = _REACTION.match(item)
        substance = (match.group("substance") if match else item).strip(" .?\"'\u201c\u201d")
        substance = _CHILDHOOD.sub("", _HEDGE.sub("", substance)).strip(" .?\"'\u201c\u201d")
        if not substance or len(substance.split()) > 5 or _NO_ALLERGIES.match(substance):
            continue
        if _NOT_SUBSTANCE.match(substance):
            continue
        reaction = None
        if match:
            reaction = (match.group("paren") or match.group("dash") or match.group("verb") or "").strip(
                " ."
            ) or None
        if reaction and re.fullmatch(r"(?:unconfirmed|unclear|unknown|uncertain|unsure)", reaction, re.I):
            reaction = None
        start = offset + part_start + (len(part) - len(part.lstrip()))
        substance_start = text.find(substance, start)
        if substance_start < 0:
            continue
        verification = "unconfirmed" if _UNCONFIRMED.search(part) else "confirmed"
        items.append(
            AllergyItem(substance_start, substance_start + len(substance), substance, reaction, verification)
        )
    return items


def allergy_output(item: AllergyItem, terms: Terminology) -> dict[str, Any]:
    rxcui = terms.drug_names.get(normalize(item.substance))
    rxnorm = None
    product = terms.products.get(terms.product_names.get(normalize(item.substance), ""))
    if rxcui is None and product is not None and product.min_rxcui:  # "Bactrim": the combination
        rxcui = product.min_rxcui
        rxnorm = {"system": RXNORM_SYSTEM, "code": product.min_rxcui, "display": product.name}
    if rxcui is None:  # "sulfamethoxazole-trimethoprim": the first ingredient
        words = normalize(item.substance).split()
        rxcui = terms.drug_names.get(words[0]) if words else None
    if rxnorm is None and rxcui is not None:
        rxnorm = {"system": RXNORM_SYSTEM, "code": rxcui, "display": terms.ingredients[rxcui].name}
    codings = []
    if product is not None:  # a combination: each ingredient coded too
        codings = [
            {"system": RXNORM_SYSTEM, "code": code, "display": terms.ingredients[code].name, "tty": "IN"}
            for code in product.ingredients
            if code in terms.ingredients
        ]
    category = (
        "medication"
        if rxcui or codings or re.search(r"\b(?:drug|sulfa|antibiotic)", item.substance, re.I)
        else None
    )
    if category is None:
        if re.search(r"\b(?:peanut|nut|shellfish|egg|milk|wheat|soy|fish|food|gluten)", item.substance, re.I):
            category = "food"
        elif re.search(r"\b(?:latex|pollen|dust|mold|cat|dog|bee|environment)", item.substance, re.I):
            category = "environment"
    return {
        "text": item.substance,
        "span": [item.start, item.end],
        "substance": item.substance,
        "reaction": item.reaction,
        "verification": item.verification,
        "category": category,
        "rxnorm": rxnorm,
        "codings": codings,
    }


# ---- family history ------------------------------------------------------------------------------
RELATIONS = (
    "paternal grandmother",
    "paternal grandfather",
    "maternal grandmother",
    "maternal grandfather",
    "paternal uncle",
    "paternal aunt",
    "maternal uncle",
    "maternal aunt",
    "grandmother",
    "grandfather",
    "mother",
    "father",
    "mom",
    "dad",
    "brother",
    "sister",
    "sibling",
    "siblings",
    "son",
    "daughter",
    "uncle",
    "aunt",
    "cousin",
    "parents",
    "grandparents",
    "wife",
    "husband",
    "spouse",
    "partner",
)
_RELATION = re.compile(r"(?<![A-Za-z])(" + "|".join(RELATIONS) + r")(?:'s)?(?![A-Za-z])", re.I)
_FAMILY_VERB = re.compile(
    r"^(?:'s)?\s*(?:(?:and|,)\s+(?:(?:paternal|maternal)\s+)?\w+\s+)*(?:[\w,()-]+\s+){0,4}?"
    r"(?:had|has|have|having|with|w/|died|deceased|passed away|diagnosed|dx|history of|hx of|suffers|"
    r"suffered|developed|from|of|-|:|=|\u2014|for\s+(?:her|his|their)\b)",
    re.I,
)
_RELATION_JOIN = re.compile(r"\s*(?:,|and|&|or|,\s*and)?\s*(?:both\s+)?(?:his|her|the|their)?\s*", re.I)
_FAMILY_LEAD = re.compile(
    r"\b(?:family history|family hx|fhx|fh)\b\s*(?:of|:|-|—|is notable for|significant for|positive for)?",
    re.I,
)


_NO_PERSONAL_OR_FAMILY = re.compile(r"\b(?:no|denies|negative)\s+(?:personal\s+(?:or|and|/)\s+)\s*$", re.I)


def family_scopes(layout: NoteLayout) -> list[tuple[int, int]]:
    """Stretches of text that speak about relatives' conditions."""
    text = layout.text
    scopes: list[tuple[int, int]] = []
    for section in layout.sections:
        if section.kind == "family_history":
            scopes.append((section.start, section.end))
    for lead in _FAMILY_LEAD.finditer(text):
        if _NO_PERSONAL_OR_FAMILY.search(text, max(0, lead.start() - 30), lead.start()):
            continue  # "no personal or family history of X": X is absent, not a relative's
        segment = layout.segment_at(lead.start())
        end = max(segment.end, lead.end())
        end = min(end, _clause_end(text, lead.end()))
        scopes.append((lead.start(), end))
    for relation in _RELATION.finditer(text):
        if _FAMILY_VERB.match(text, relation.end()) or _FAMILY_VERB.match(text[relation.end() :]):
            scopes.append((relation.start(), _clause_end(text, relation.end())))
    return scopes


def _clause_end(text: str, position: int) -> int:
    found = re.compile(r"[.;]|\n\s*\n|\n(?=\s*(?:[-*•#]|\d{1,2}[.)]|[A-Z][A-Za-z ]{0,30}:))").search(
        text, position
    )
    return found.start() if found else len(text)


def family_output(
    layout: NoteLayout, start: int, end: int, condition_code: str | None, terms: Terminology
) -> list[dict[str, Any]]:
    """A relative's condition, one entry per relation named in the same clause before the condition."""
    text = layout.text
    segment = layout.segment_at(start)
    clause_start = max(segment.start, text.rfind(";", segment.start, start) + 1)
    before = text[clause_start:start]
    if re.search(r"\b(?:no|denies|negative for|without)\b[^,]*$", before, re.I):
        return []  # "no family history of eczema"
    # the relatives named last before the condition, together ("father and paternal uncle with X"), not
    # those of an earlier condition of the clause ("mother had X and her father has Y")
    matches = list(_RELATION.finditer(before))
    group: list[re.Match[str]] = matches[-1:]
    for previous in reversed(matches[:-1]):
        if not _RELATION_JOIN.fullmatch(before[previous.end() : group[0].start()]):
            break
        group.insert(0, previous)
    relation_names = [m.group(1).lower() for m in group]
    if not relation_names:  # "colon cancer in her father", "DM (mother)", "... in mother and sister"
        after = text[end : _clause_end(text, end)]
        following = re.match(r"\s*(?:\(|in (?:his |her |the |a )?|- |, )", after, re.I)
        if following:
            relation_names = [m.group(1).lower() for m in _RELATION.finditer(after[: following.end() + 60])]
    if not relation_names:  # "maternal asthma", "paternal DM"
        side = re.search(r"\b(maternal|paternal)\s*$", before, re.I)
        if side:
            relation_names = ["mother" if side.group(1).lower() == "maternal" else "father"]
    relation_names = [{"mom": "mother", "dad": "father"}.get(r, r) for r in relation_names] or [None]
    code = None
    if condition_code:
        code = {
            "system": ICD10CM_SYSTEM,
            "code": condition_code,
            "display": terms.icd10cm[condition_code].description,
        }
    return [
        {
            "text": text[start:end],
            "span": [start, end],
            "relationship": relation,
            "condition": text[start:end],
            "code": code,
        }
        for relation in relation_names
    ]


# ---- procedures and plan ------------------------------------------------------------------------
_PROCEDURE = re.compile(
    r"(?<![A-Za-z])(?:(?:laparoscopic|robotic|open|total|partial|bilateral|right|left)\s+)*"
    r"(?:[a-z]+(?:ectomy|ostomy|otomy|plasty|scopy)|CABG|PCI|coronary stent(?:ing)?|stent placement|"
    r"knee replacement|hip replacement|cataract surgery|c-section|cesarean section|bypass surgery|"
    r"cardiac catheterization|ablation|biopsy)(?![A-Za-z])",
    re.I,
)
_PROCEDURE_DONE = re.compile(
    r"(?:s/p|status post|after|underwent|had (?:a|an)?|history of|hx of|post-?op(?:erative)? from|following)"
    r"\s+(?:\w+\s+){0,4}$",
    re.I,
)
_DATE = re.compile(
    r"\b(?:(?P<iso>(?:19|20)\d\d-\d\d-\d\d)|(?P<us>\d{1,2}[/-]\d{1,2}[/-](?:(?:19|20)\d\d|\d\d))"
    r"|(?P<named>(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? (?P<day>\d{1,2}),? "
    r"(?P<named_year>(?:19|20)\d\d))|(?P<year>(?:19|20)\d\d))\b",
    re.IGNORECASE,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def find_procedures(layout: NoteLayout) -> list[dict[str, Any]]:
    text = layout.text
    procedures = []
    for match in _PROCEDURE.finditer(text):
        section = layout.section_at(match.start())
        before = text[max(0, match.start() - 50) : match.start()]
        done = _PROCEDURE_DONE.search(before) or section in ("past_surgical_history", "past_history")
        if not done or section in ("plan",):
            continue
        after = text[match.end() : _clause_end(text, match.end()) + 1]
        date = _DATE.search(after[:40])
        procedures.append(
            {
                "text": match.group(0),
                "span": [match.start(), match.end()],
                "code": None,
                "date": _iso_date(date) if date else None,
            }
        )
    return procedures


_PLAN_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("referral", re.compile(r"\b(?:refer\w*|consult\w*)\b", re.I)),
    (
        "test",
        re.compile(
            r"\b(?:check|recheck|repeat|order\w*|obtain|draw|labs?|x-?ray|ct|mri|ultrasound|echo\w*|ecg|ekg|"
            r"sleep study|urinalysis|culture|bmp|cmp|cbc|lipid panel|level|a1c|hba1c|inr|tsh|colonoscopy|"
            r"mammogram|screening|spirometry|pfts?)\b",
            re.I,
        ),
    ),
    (
        "follow_up",
        re.compile(r"\b(?:follow[- ]?up|f/u|return|rtc|revisit|see (?:me|you) in|next visit)\b", re.I),
    ),
    ("procedure", re.compile(r"\b(?:vaccine|vaccination|immunization|injection|surgery|procedure)\b", re.I)),
    (
        "medication",
        re.compile(
            r"\b(?:start|stop|continue|increase|decrease|hold|discontinue|taper|resume|add|switch|refill|mg)\b",
            re.I,
        ),
    ),
)


def find_plan(layout: NoteLayout) -> list[dict[str, Any]]:
    text = layout.text
    items = []
    for segment in layout.segments:
        section = layout.section_at(segment.start)
        if section not in ("plan", "assessment_plan"):
            continue
        raw = text[segment.start : segment.end]
        stripped = raw.strip()
        marker = re.match(r"(?:[-*•#]+|\d{1,2}[.)]|\(\d{1,2}\))\s*", stripped)
        if marker:
            stripped = stripped[marker.end() :]
        stripped = stripped.rstrip(" .;")
        if len(stripped) < 3 or re.fullmatch(r"(?:P|Plan|A/P)\s*:?", stripped, re.I):
            continue
        kind = next((name for name, pattern in _PLAN_KINDS if pattern.search(stripped)), "other")
        if section == "assessment_plan" and kind == "other":
            continue
        start = text.index(stripped, segment.start)
        items.append({"text": stripped, "span": [start, start + len(stripped)], "kind": kind})
    return items


# ---- patient and encounter ----------------------------------------------------------------------
_AGE = re.compile(
    r"(?<![\d.])(\d{1,3})\s*(?:-|\s)?\s*(?:years?|yrs?|y)[\s-]*(?:old|/o|o\b)"
    r"|(?<![\d.])(\d{1,3})\s*(?:yo|y/o|y\.o\.)(?![a-z])"
    r"|(?<![\w.])(\d{1,3})\s?(?-i:(M|F))(?![A-Za-z0-9])",
    re.I,
)
_MALE = re.compile(r"\b(?:male|man|gentleman|boy|he|his|him|mr)\b", re.I)
_FEMALE = re.compile(r"\b(?:female|woman|lady|girl|she|her|mrs|ms)\b", re.I)


_FRONT_MATTER_AGE = re.compile(r"^patient_age:\s*(\d{1,3})\s*$", re.M)
_FRONT_MATTER_SEX = re.compile(r"^patient_sex:\s*(male|female)\s*$", re.M | re.I)
_FRONT_MATTER_DATE = re.compile(r"^(?:encounter_date|date):\s*((?:19|20)\d\d-\d\d-\d\d)\s*$", re.M)


def find_patient(text: str) -> dict[str, Any]:
    age_line = _FRONT_MATTER_AGE.search(text)
    sex_line = _FRONT_MATTER_SEX.search(text)
    if age_line or sex_line:  # a YAML header, as the shipped notes have
        return {
            "age": int(age_line.group(1)) if age_line else None,
            "age_unit": "a" if age_line else None,
            "sex": sex_line.group(1).lower() if sex_line else None,
            "span": [age_line.start(1), age_line.end(1)] if age_line else None,
        }
    age = None
    sex = None
    age_span = None
    found = _AGE.search(text)
    if found:
        number = found.group(1) or found.group(2) or found.group(3)
        if 0 < int(number) < 125:
            age = int(number)
            age_span = [found.start(), found.end()]
        letter = (
            found.group(4)
            or (re.match(r"\s*(?-i:([MF]))(?![A-Za-z0-9])", text[found.end() :]) or [None, None])[1]
        )
        if letter:
            sex = "male" if letter == "M" else "female"
    if sex is None:
        window = text[found.start() : found.end() + 40] if found else text[:400]
        male = _MALE.search(window)
        female = _FEMALE.search(window)
        if male and (not female or male.start() < female.start()):
            sex = "male"
        elif female:
            sex = "female"
    if sex is None:
        males = len(_MALE.findall(text))
        females = len(_FEMALE.findall(text))
        if males != females and max(males, females) >= 2:
            sex = "male" if males > females else "female"
    return {"age": age, "age_unit": "a" if age is not None else None, "sex": sex, "span": age_span}


def find_encounter(text: str) -> dict[str, Any]:
    kind = note_type(text)
    typed = {"note_type": kind, "class": encounter_class(kind, text)}
    front_matter = _FRONT_MATTER_DATE.search(text[:800])
    if front_matter:
        return {"date": front_matter.group(1), "span": [front_matter.start(1), front_matter.end(1)], **typed}
    head = text[:600]
    labelled = re.search(
        r"(?:date(?: of service| of visit)?|dos|visit date|seen on|discharge date|date of discharge)\W{0,6}",
        head,
        re.I,
    )
    found = _DATE.search(head, labelled.end()) if labelled else None
    if found is None or found.group("year"):
        found = next((m for m in _DATE.finditer(head) if not m.group("year")), None)
    if found is None:
        return {"date": None, "span": None, **typed}
    return {"date": _iso_date(found), "span": [found.start(), found.end()], **typed}


def _iso_date(match: re.Match[str]) -> str | None:
    if match.group("iso"):
        return match.group("iso")
    if match.group("us"):
        month, day, year = re.split(r"[/-]", match.group("us"))
        year = year if len(year) == 4 else f"20{year}"
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            return f"{year}-{int(month):02d}-{int(day):02d}"
        return None
    if match.group("named"):
        month = _MONTHS.index(match.group("month").lower()[:3]) + 1
        if 1 <= int(match.group("day")) <= 31:
            return f"{match.group('named_year')}-{month:02d}-{int(match.group('day')):02d}"
        return None
    return match.group("year")
