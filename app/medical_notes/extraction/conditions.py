"""Conditions (problems, diagnoses, symptoms) with ICD-10-CM codes and assertion status."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from medical_notes.extraction.assertions import (
    ABSENT,
    COLON_NEGATIVE,
    FAMILY,
    HISTORICAL,
    HYPOTHETICAL,
    POSSIBLE,
    PRESENT,
    assert_finding,
)
from medical_notes.extraction.lexicon import PhraseIndex, PhraseMatch, Token, find_phrases
from medical_notes.extraction.specificity import (
    gestational_weeks,
    guarded,
    history_code,
    joint_of_effusion,
    lateral_code,
    pregnancy_code,
    remission_code,
    score_spans,
    site_code,
)
from medical_notes.extraction.terminology import ICD10CM_SYSTEM, CodeCandidate, Terminology
from medical_notes.extraction.text import NoteLayout

# Below this confidence the text is kept and `code` is null.
CODE_CONFIDENCE_THRESHOLD = 0.8
CURATED_CONFIDENCE = 0.95
DESCRIPTION_CONFIDENCE = 0.9
# An assessment line that matches a code description this well is taken as one diagnosis.
ASSESSMENT_MATCH_THRESHOLD = 0.85
# A phrase followed by the rest of a title ("..., recurrent, moderate") needs a closer fit.
EXTENSION_MATCH_THRESHOLD = 0.9

# Words from the tabular list that are too general, or mean something else in notes, to be read as a
# condition on their own.
GENERIC_TERMS = frozenset(
    {
        "pain",
        "disease",
        "disorder",
        "infection",
        "injury",
        "mass",
        "lesion",
        "shock",
        "abnormal",
        "failure",
        "deficiency",
        "dependence",
        "fall",
        "falls",
        "contact",
        "underdosing",
        "poisoning",
        "complication",
        "complications",
        "screening",
        "examination",
        "carrier",
        "pregnant",
        "pregnancy",
        "alcohol",
        "stress",
        "reaction",
        "allergy",
        "exposure",
        "hypertensive",
        "obese",
        "diabetic",
        "smoking",
        "tobacco",
        "immobility",
        "abuse",
        "other",
        "cramp",
        "arrest",
        "collapse",
        "malnutrition",
        "agitation",
    }
)
# Sections whose words are not the patient's problems.
SKIPPED_SECTIONS = frozenset({"allergies", "social_history"})
_TYPE_2 = re.compile(r"type\s*(?:2|ii)|\bt2|dm\s*(?:2|ii)|niddm", re.I)
_TITLE_CONTINUES = re.compile(r",\s*[a-z]|\s+(?:with|without|in|due to|of|stage|type)\s", re.I)
_CLAUSE_END = re.compile(r"[.;:()\n]| - | \u2014 ")
_NOT_A_PROBLEM_AFTER = re.compile(
    r"[ \t]+(?:action plan|education|educator|clinic|diet|medications?|meds|screening|vaccine|vaccination|"
    r"immunization|shot|team|nurse|specialist|counsel+ing|management|program+e?|plan|referral|advice|goals?|"
    r"warning signs?|precautions|red flags?)\b",
    re.I,
)
# Long-term conditions: "history of hypertension" means the patient has it, not that it is over.
CHRONIC_CATEGORIES = frozenset(
    [
        "I10",
        "I11",
        "I12",
        "I13",
        "E10",
        "E11",
        "E78",
        "E66",
        "N18",
        "J44",
        "J45",
        "I50",
        "I48",
        "I25",
        "E03",
        "E05",
        "F32",
        "F33",
        "F41",
        "F31",
        "F20",
        "K21",
        "M19",
        "M17",
        "M16",
        "M10",
        "G47",
        "G43",
        "G40",
        "G20",
        "E55",
        "D63",
        "D50",
        "M81",
        "N40",
        "K58",
        "L40",
        "M06",
        "I73",
        "E21",
        "N25",
        "B20",
        "M32",
    ]
)
_ASSESSMENT_ITEM_END = re.compile(r"[.;\n]| - | — |, (?=[a-z]+ (?:controlled|stable|improving|worsening))")


@dataclass
class ConditionMention:
    start: int
    end: int
    code: str | None
    confidence: float
    source: str  # "lexicon" | "icd10cm-description" | "icd10cm-search" | "llm"
    candidates: list[CodeCandidate] = field(default_factory=list)
    assertion: str = PRESENT
    # the other mentions of the same concept merged into this one (patient_conditions)
    merged: list[ConditionMention] = field(default_factory=list)

    def set_code(self, code: str, terms: Terminology) -> None:
        if code == self.code or code not in terms.icd10cm or not terms.icd10cm[code].billable:
            return
        self.code = code
        self.candidates = [CodeCandidate(code, terms.icd10cm[code].description, self.confidence)]


# Codes of an acute event inside a chronic category: "admitted 2019 for DKA" is over.
_ACUTE_IN_CHRONIC = re.compile(r"^(?:E1[013]\.(?:0|1|64)|I50\.[234][13]|J44\.[01]|J45\.\d[12])")
_HISTORY_TRIGGERS = ("history of", "hx of", "h/o", "hx", "past history of", "dated")


@cache
def condition_index(terms: Terminology) -> PhraseIndex:
    """The curated phrases first, then the short titles of the tabular list (without the generic words)."""
    titles = {key: code for key, code in terms.description_terms.items() if key not in GENERIC_TERMS}
    return PhraseIndex(terms.condition_terms, titles)


def find_condition_mentions(
    layout: NoteLayout,
    tokens: list[Token],
    terms: Terminology,
    blocked: list[tuple[int, int]],
    sig_spans: list[tuple[int, int]] | None = None,
    drug_names: list[tuple[int, int]] | None = None,
) -> list[ConditionMention]:
    """Every condition phrase in the note (family mentions included: the caller sorts them out).
    A phrase inside a drug's name (`drug_names`) is not a condition. Inside a medication's sig (`sig_spans`,
    from the end of the drug's name) only a problem of a list the sig ran into ("on Eliquis,
    hypothyroidism": a comma and no dose between) is a condition."""
    text = layout.text
    mentions: list[ConditionMention] = []
    blocked = blocked + score_spans(text)
    for match in find_phrases(text, tokens, condition_index(terms)):
        section = layout.section_at(match.start)
        # the social history's one condition is a former smoker's status ("SHx: former smoker, quit 2010")
        skipped = section in SKIPPED_SECTIONS and not (
            section == "social_history" and match.value == "Z87.891"
        )
        if skipped or _overlaps(match.start, match.end, blocked):
            continue
        # a phrase inside a drug's name is the drug; one going on past it is a finding ("lithium toxicity")
        if drug_names and any(start <= match.start and match.end <= end for start, end in drug_names):
            continue
        if drug_names and any(
            start < match.end and match.start < end and match.start < start for start, end in drug_names
        ):
            continue
        in_family = layout.section_at(match.start) == "family_history"  # a relative's drug's indication
        if sig_spans and not in_family and not _outside_sig(text, match.start, match.end, sig_spans):
            continue
        guard = guarded(match.key, text, match.start, match.end)
        if guard == "drop":
            continue
        # "PE:", "CC:" and such are headings, not problems
        if (
            text[match.end : match.end + 1] == ":"
            and len(match.key) <= 4
            and not COLON_NEGATIVE.match(text, match.end)
        ):
            continue
        if _NOT_A_PROBLEM_AFTER.match(text, match.end):  # "asthma action plan", "diabetes education"
            continue
        mention = _lexicon_mention(match, terms)
        if guard is not None:
            mention.set_code(guard, terms)
        elif match.key == "effusion":
            joint = joint_of_effusion(text, match.start)
            if joint is not None:
                mention.start = joint[0]
                mention.set_code(joint[1], terms)
        mentions.append(mention)
    mentions = _extend_titles(text, terms, mentions)
    mentions = _assessment_items(layout, terms, mentions, blocked)
    mentions = _type_1_diabetes_codes(text, terms, mentions)
    mentions = _diabetes_complications(text, terms, mentions)
    mentions = _diabetic_findings(terms, mentions)
    mentions = _organism_and_bleeding_codes(text, terms, mentions)
    mentions = _gestational_age(text, terms, mentions, blocked)
    for mention in mentions:
        if mention.code is not None:
            code = site_code(mention.code, text, mention.start, mention.end)
            code = lateral_code(code, text, mention.start, mention.end)
            code = remission_code(code, text, mention.start, mention.end)
            mention.set_code(pregnancy_code(code, text, terms), terms)
        result = assert_finding(layout, mention.start, mention.end)
        mention.assertion = result.status
        if (
            result.status == HISTORICAL
            and mention.code
            and mention.code[:3] in CHRONIC_CATEGORIES
            and not _ACUTE_IN_CHRONIC.match(mention.code)
            and result.trigger
            and result.trigger.lower() in _HISTORY_TRIGGERS
        ):
            mention.assertion = PRESENT
        if mention.assertion == HISTORICAL and mention.code:
            mention.set_code(history_code(mention.code), terms)
    return mentions


def _gestational_age(
    text: str, terms: Terminology, mentions: list[ConditionMention], blocked: list[tuple[int, int]]
) -> list[ConditionMention]:
    """ "32 weeks", "32w3d", "GA 32+3" in a pregnancy note: the Z3A weeks-of-gestation code."""
    found = list(mentions)
    for start, end, weeks in gestational_weeks(text):
        code = f"Z3A.{weeks:02d}"
        entry = terms.icd10cm.get(code)
        if entry is None or not entry.billable or _overlaps(start, end, blocked):
            continue
        if any(m.start < end and start < m.end for m in mentions):
            continue
        found.append(
            ConditionMention(
                start,
                end,
                code,
                CURATED_CONFIDENCE,
                "lexicon",
                [CodeCandidate(code, entry.description, 0.95)],
            )
        )
    found.sort(key=lambda m: m.start)
    return found


def _lexicon_mention(match: PhraseMatch, terms: Terminology) -> ConditionMention:
    curated = terms.condition_terms.get(match.key) == match.value
    confidence = CURATED_CONFIDENCE if curated else DESCRIPTION_CONFIDENCE
    display = terms.icd10cm[match.value].description
    return ConditionMention(
        match.start,
        match.end,
        match.value,
        confidence,
        "lexicon" if curated else "icd10cm-description",
        [CodeCandidate(match.value, display, confidence)],
    )


def _assessment_items(
    layout: NoteLayout, terms: Terminology, mentions: list[ConditionMention], blocked: list[tuple[int, int]]
) -> list[ConditionMention]:
    """Diagnosis lines of the assessment: when a whole line reads like one ICD-10-CM title ("Elevated blood
    pressure without diagnosis of hypertension", "Type 1 diabetes mellitus with hypoglycemia"), that line is
    one condition with that code and the shorter phrases inside it are not separate ones. A line whose best
    title is in another category than the phrase found in it keeps the phrase (the phrase list is curated,
    the title search is not)."""
    text = layout.text
    result = list(mentions)
    for section in layout.sections:
        if section.kind not in ("assessment", "assessment_plan"):
            continue
        position = section.start
        while position < section.end:
            item_start = _skip_item_marker(text, position, section.end)
            end_match = _ASSESSMENT_ITEM_END.search(text, item_start, section.end)
            item_end = end_match.start() if end_match else section.end
            # a diagnosis wrapped onto the next line ("single episode,\nin partial remission")
            while end_match and end_match.group(0) == "\n" and text[item_end - 1 : item_end] == ",":
                end_match = _ASSESSMENT_ITEM_END.search(text, item_end + 1, section.end)
                item_end = end_match.start() if end_match else section.end
            item = text[item_start:item_end].strip(" ,*#")
            if len(item.split()) >= 2 and not _overlaps(item_start, item_end, blocked):
                start = text.index(item, item_start)
                result = _title_match(
                    text, terms, result, start, start + len(item), ASSESSMENT_MATCH_THRESHOLD
                )
            position = item_end + 1
    result.sort(key=lambda m: m.start)
    return result


def _title_match(
    text: str,
    terms: Terminology,
    mentions: list[ConditionMention],
    start: int,
    end: int,
    threshold: float,
) -> list[ConditionMention]:
    """Replace the mentions inside text[start:end] by one mention of the best ICD-10-CM title for the whole
    stretch (tried whole, then up to each comma), when it fits well enough and stays in the category of the
    longest phrase found inside."""
    stretch = text[start:end]
    cuts = [len(stretch), *[m.start() for m in re.finditer(",", stretch)][::-1]]
    inside = [m for m in mentions if m.start >= start and m.end <= end]
    longest = max(inside, key=lambda m: m.end - m.start, default=None)
    for cut in cuts:
        candidate = stretch[:cut].rstrip(" ,")
        if not candidate or (longest is not None and start + len(candidate) < longest.end):
            continue
        candidates = terms.search_icd10cm(candidate, limit=3)
        if not candidates or candidates[0].score < threshold:
            continue
        best = candidates[0]
        if longest is not None:
            if longest.start == start and longest.end == start + len(candidate):
                return mentions
            if longest.code is None or best.code[:3] != longest.code[:3]:
                continue
        covered = [m for m in inside if m.end <= start + len(candidate)]
        kept = [m for m in mentions if m not in covered]
        kept.append(
            ConditionMention(
                start, start + len(candidate), best.code, round(best.score, 3), "icd10cm-search", candidates
            )
        )
        return kept
    return mentions


def _extend_titles(text: str, terms: Terminology, mentions: list[ConditionMention]) -> list[ConditionMention]:
    """A phrase followed by more of an ICD-10-CM title ("major depressive disorder, recurrent, moderate")
    takes the more specific code of the whole title, within the same category."""
    result = list(mentions)
    for mention in mentions:
        if mention.code is None or not _TITLE_CONTINUES.match(text, mention.end):
            continue
        clause = _CLAUSE_END.search(text, mention.end)
        end = min(clause.start() if clause else len(text), mention.end + 80)
        result = _title_match(text, terms, result, mention.start, end, EXTENSION_MATCH_THRESHOLD)
    return result


def _type_1_diabetes_codes(
    text: str, terms: Terminology, mentions: list[ConditionMention]
) -> list[ConditionMention]:
    """In a note about type 1 diabetes (and not type 2), "diabetic neuropathy" or "diabetes" is E10.x, not
    the phrase list's default E11.x."""
    if not any(m.code and m.code.startswith("E10") for m in mentions):
        return mentions
    if any(_TYPE_2.search(text[m.start : m.end]) for m in mentions):
        return mentions
    for mention in mentions:
        if mention.code and mention.code.startswith("E11."):
            converted = "E10." + mention.code[4:]
            entry = terms.icd10cm.get(converted)
            if entry is not None and entry.billable:
                mention.code = converted
                mention.candidates = [CodeCandidate(converted, entry.description, mention.confidence)]
    return mentions


# A complication written in the clause after "diabetes" ("T2DM w/ steroid-related hyperglycemia", "DM2 -
# hypoglycemia on glipizide", "type 2 diabetes with CKD 3a") reaches the diabetes code; the glycaemia
# finding is then part of the diabetes record, not a problem of its own.
_DIABETES_COMPLICATION = re.compile(
    r"\b(?:(?P<hyper>hyperglyc[a-z]*|uncontrolled|poorly controlled|inadequately controlled|out of control)|"
    r"(?P<hypo>hypoglyc[a-z]*)|(?P<ckd>ckd|chronic kidney disease|diabetic kidney disease|dkd|"
    r"(?:diabetic )?nephropathy)|(?P<neuro>(?:peripheral |diabetic )?(?:poly)?neuropathy))\b",
    re.I,
)
_DIABETES_CLAUSE_END = re.compile(r"[;:\n|)]|\.(?=\s|$)|\bbut\b")
_PARENTHESIS = re.compile(r"\([^()\n]*\)")
_DIABETES_SUFFIX = {"hyper": "65", "hypo": "649", "ckd": "22", "neuro": "42"}
_GLYCAEMIA_CODES = frozenset({"R73.9", "R73.09", "E16.2", "E16.1", "E16.0"})


def _diabetes_complications(
    text: str, terms: Terminology, mentions: list[ConditionMention]
) -> list[ConditionMention]:
    absorbed: set[int] = set()
    for mention in mentions:
        code = mention.code
        if not code or code[:3] not in ("E10", "E11", "E13") or code[3:] != ".9":
            continue
        # a parenthesis inside the clause is skipped; an unmatched ")" closes the one the diabetes is in
        window = _PARENTHESIS.sub(lambda m: " " * len(m.group(0)), text[mention.end : mention.end + 80])
        stop = _DIABETES_CLAUSE_END.search(window)
        clause = window[: stop.start()] if stop else window
        found = _DIABETES_COMPLICATION.search(clause)
        if not found:
            continue
        kind = found.lastgroup or ""
        mention.set_code(f"{code[:3]}.{_DIABETES_SUFFIX[kind]}", terms)
        if kind in ("hyper", "hypo"):
            end = mention.end + found.end()
            absorbed.update(
                id(other)
                for other in mentions
                if other is not mention
                and other.code in _GLYCAEMIA_CODES
                and mention.end <= other.start < end
            )
    return [m for m in mentions if id(m) not in absorbed]


# In a note about one type of diabetes, hypoglycemia is that diabetes' complication
# (ICD-10-CM codes the diabetic patient's hypoglycemia to E1x.649).
_DIABETIC_FINDINGS = {"E16.2": "649", "E16.1": "649", "E16.0": "649"}


def _diabetic_findings(terms: Terminology, mentions: list[ConditionMention]) -> list[ConditionMention]:
    types = {m.code[:3] for m in mentions if m.code and m.code[:3] in ("E10", "E11")}
    if len(types) != 1:
        return mentions
    kind = types.pop()
    if any(m.code == f"{kind}.649" for m in mentions):
        return (
            mentions  # "diabetes with hypoglycemia" written out: a bare "hypoglycemia" stays its own finding
        )
    for mention in mentions:
        suffix = _DIABETIC_FINDINGS.get(mention.code or "")
        if suffix:
            mention.set_code(f"{kind}.{suffix}", terms)
    return mentions


# The organism of a pneumonia, from its own line or from a respiratory culture / antigen line of the note.
_ORGANISMS = (
    (re.compile(r"\bklebsiella\b", re.I), "J15.0"),
    (re.compile(r"\bmssa\b|methicillin[- ]s(?:usceptible|ensitive)", re.I), "J15.211"),
    (re.compile(r"\bmrsa\b|methicillin[- ]resistant", re.I), "J15.212"),
    (re.compile(r"\bpseudomonas\b", re.I), "J15.1"),
    (
        re.compile(r"\bs(?:trep)?\.?\s*pneumoniae\b|\bpneumococc\w*|\bstrep(?:tococcus)? pneumo\b", re.I),
        "J13",
    ),
    (re.compile(r"\bh(?:aemophilus|emophilus|\.)\s*influenzae\b", re.I), "J14"),
    (re.compile(r"\bmycoplasma\b", re.I), "J15.7"),
)
_RESPIRATORY_SOURCE = re.compile(
    r"\b(?:sputum|bal\b|bronch\w*|tracheal|endotracheal|eta\b|resp(?:iratory)? (?:cx|culture)|urine "
    r"(?:legionella |pneumococcal |strep )?antigen|pneumonia)",
    re.I,
)
_BLEEDING = re.compile(r"\b(?:bleed\w*|hemorrhag\w*|haemorrhag\w*|hematemesis|melena|ugib|gib)\b", re.I)
_ULCER_BLEEDING = {"K25.9": "K25.4", "K26.9": "K26.4", "K27.9": "K27.4", "K28.9": "K28.4"}
_GI_BLEED_CODES = frozenset({"K92.2"})
_INFLUENZA_PNEUMONIA = {"J10.1": ("J10.00", "J10.08"), "J11.1": ("J11.00", "J11.08")}


def _organism_and_bleeding_codes(
    text: str, terms: Terminology, mentions: list[ConditionMention]
) -> list[ConditionMention]:
    """Pneumonia with its organism (J15.0 Klebsiella, J13 pneumococcal...), influenza with pneumonia (J10.0x),
    an ulcer that bleeds (K25.4) with the bleed of its sentence as one record."""
    absorbed: set[int] = set()
    organism_lines: list[str] | None = None
    for mention in mentions:
        code = mention.code or ""
        line_start, line_end = text.rfind("\n", 0, mention.start) + 1, text.find("\n", mention.end)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        if code.startswith("J18."):
            if organism_lines is None:
                organism_lines = [ln for ln in text.splitlines() if _RESPIRATORY_SOURCE.search(ln)]
            found = _organism(line) or _organism("\n".join(organism_lines))
            if found:
                mention.set_code(found, terms)
        elif code in _INFLUENZA_PNEUMONIA and re.search(r"\bpneumonia\b", line, re.I):
            other = _organism(line)
            mention.set_code(_INFLUENZA_PNEUMONIA[code][1 if other else 0], terms)
        elif code in _ULCER_BLEEDING:
            segment_start = max(text.rfind(". ", 0, mention.start) + 2, line_start)
            segment_end = min(
                x for x in (text.find(". ", mention.end), len(text) if line_end < 0 else line_end) if x >= 0
            )
            if _BLEEDING.search(text, segment_start, segment_end):
                mention.set_code(_ULCER_BLEEDING[code], terms)
                absorbed.update(
                    id(other)
                    for other in mentions
                    if other.code in _GI_BLEED_CODES and segment_start <= other.start < segment_end
                )
                mention.start = min(
                    [mention.start]
                    + [
                        o.start
                        for o in mentions
                        if id(o) in absorbed and segment_start <= o.start < segment_end
                    ]
                )
    return [m for m in mentions if id(m) not in absorbed]


def _organism(text: str) -> str | None:
    found = {code for pattern, code in _ORGANISMS if pattern.search(text)}
    return found.pop() if len(found) == 1 else None


def _skip_item_marker(text: str, position: int, limit: int) -> int:
    marker = re.compile(r"[ \t\n]*(?:[-*•#]+|\d{1,2}[.)]|\(\d{1,2}\))?[ \t]*")
    match = marker.match(text, position, limit)
    return match.end() if match else position


_LIST_GAP = re.compile(r"[^\d|\n(]*,\s*$")
# A sig names its indication after "prn", "for", "as needed" ...; a comma or a closing parenthesis with no
# such word before it ends the sig ("Hyzaar 50/12.5 daily, GERD on ...", "(on Eliquis at home), DM2").
_INDICATION_WORD = re.compile(
    r"\b(?:prn|for|as needed|to treat|treats?|indication|if|when|d/t|due to)\b", re.I
)
_INSTRUCTION_IN_SIG = re.compile(r"\b(?:and|then|;)\s+(?:call|return|seek|report|notify|go to)\b", re.I)
_SIG_BREAK = re.compile(r"[,;)]\s|\s[-\u2014\u2013]\s")


def _outside_sig(text: str, start: int, end: int, sig_spans: list[tuple[int, int]]) -> bool:
    for sig_start, sig_end in sig_spans:
        if sig_start <= start < sig_end:
            if _LIST_GAP.match(text, sig_start, start):
                continue
            gap = text[sig_start:start]
            if _SIG_BREAK.search(gap) and not _INDICATION_WORD.search(gap):
                continue
            if _INSTRUCTION_IN_SIG.search(gap):
                continue  # "stop Lamictal and call us for any rash": the instruction's findings
            return False
    return True


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < span_end and span_start < end for span_start, span_end in spans)


def condition_output(mention: ConditionMention, text: str, terms: Terminology) -> dict[str, object]:
    code = None
    if mention.code is not None and mention.confidence >= CODE_CONFIDENCE_THRESHOLD:
        code = {
            "system": ICD10CM_SYSTEM,
            "code": mention.code,
            "display": terms.icd10cm[mention.code].description,
        }
    every = sorted([mention, *mention.merged], key=lambda m: m.start)
    return {
        "text": text[mention.start : mention.end],
        "span": [mention.start, mention.end],
        "code": code,
        "candidates": [candidate.as_dict() for candidate in mention.candidates],
        "assertion": mention.assertion,
        "confidence": mention.confidence,
        "source": mention.source,
        "mentions": [
            {"span": [m.start, m.end], "text": text[m.start : m.end], "assertion": m.assertion} for m in every
        ],
    }


# Categories read as one concept when one wording is unspecified ("OA" and "L knee OA", "CHF" and "HFrEF");
# elsewhere only codes that share their first five characters ("knee pain" and "L knee pain").
_CONCEPT_FAMILIES = {
    "M15": "OA",
    "M16": "OA",
    "M17": "OA",
    "M18": "OA",
    "M19": "OA",
    "F32": "MDD",
    "F33": "MDD",
    "J12": "PNA",
    "J13": "PNA",
    "J14": "PNA",
    "J15": "PNA",
    "J18": "PNA",
}
_ONE_CONCEPT_CATEGORIES = frozenset(
    [
        "I50",
        "N18",
        "J44",
        "J45",
        "I48",
        "E78",
        "E66",
        "M15",
        "M16",
        "M17",
        "M18",
        "M19",
        "F32",
        "F33",
        "H66",
        "H65",
        "H60",
        "H61",
        "H92",
        "H93",
        "C34",
        "C50",
        "J12",
        "J13",
        "J14",
        "J15",
        "J18",
        "R07",
        "R60",
        "I82",
        "E10",
        "E11",
        "E13",
        "O14",
        "O24",
        "O13",
        "I26",
        "K21",
        "I63",
        "G43",
    ]
)
_PATIENT_ASSERTIONS = (PRESENT, POSSIBLE, HISTORICAL)


def patient_conditions(mentions: list[ConditionMention], text: str) -> list[ConditionMention]:
    """One record per concept and assertion group: synonyms, abbreviation and expansion, and repeats of a
    code are merged (the record keeps every mention in `merged`); an unspecified wording merges into a more
    specific code of the same concept ("CHF" into "acute on chronic systolic HF"). A negated or hypothetical
    mention of a problem the patient has elsewhere stays a record of its own. Family mentions are not the
    patient's and never appear here."""
    by_concept: dict[str, list[ConditionMention]] = {}
    for mention in mentions:
        if mention.assertion == FAMILY:
            continue
        by_concept.setdefault(_concept_key(mention, text), []).append(mention)
    records: list[ConditionMention] = []
    for group in by_concept.values():
        for assertion, members in _assertion_groups(group):
            if members:
                records.append(_record(members, assertion))
    records = _merge_unspecified(records)
    return sorted(records, key=lambda m: m.start)


def _concept_key(mention: ConditionMention, text: str) -> str:
    if mention.code is not None and mention.confidence >= CODE_CONFIDENCE_THRESHOLD:
        return mention.code
    return "text:" + " ".join(text[mention.start : mention.end].lower().split())


def _assertion_groups(group: list[ConditionMention]) -> list[tuple[str, list[ConditionMention]]]:
    by: dict[str, list[ConditionMention]] = {}
    for mention in group:
        by.setdefault(mention.assertion, []).append(mention)
    if by.get(PRESENT):
        patient = [m for m in group if m.assertion in _PATIENT_ASSERTIONS]
        return [(PRESENT, patient), (ABSENT, by.get(ABSENT, [])), (HYPOTHETICAL, by.get(HYPOTHETICAL, []))]
    # a suspicion and its answer are one record with the last word: "r/o PE" ... "PE ruled out"
    suspected = [m for m in group if m.assertion in (POSSIBLE, ABSENT)]
    final = suspected[-1].assertion if suspected else ABSENT
    return [
        (final, suspected),
        (HISTORICAL, by.get(HISTORICAL, [])),
        (HYPOTHETICAL, by.get(HYPOTHETICAL, [])),
    ]


def _record(members: list[ConditionMention], assertion: str) -> ConditionMention:
    """The most informative mention (the longest wording of the record's assertion) leads the record."""
    leading = [m for m in members if m.assertion == assertion] or members
    main = max(leading, key=lambda m: (m.confidence >= CODE_CONFIDENCE_THRESHOLD, m.end - m.start, -m.start))
    main.assertion = assertion
    main.merged = [m for m in members if m is not main]
    return main


def _unspecified(record: ConditionMention) -> bool:
    if record.code and record.code[:3] in ("E10", "E11", "E13") and record.code[3:] == ".9":
        return True  # "diabetes" beside "diabetes with hyperglycemia" is the same problem
    return any(c.code == record.code and "unspecified" in c.display.lower() for c in record.candidates)


def _family(code: str) -> str:
    if code[:3] in _ONE_CONCEPT_CATEGORIES:
        return _CONCEPT_FAMILIES.get(code[:3], code[:3])
    return code[:5]


def _merge_unspecified(records: list[ConditionMention]) -> list[ConditionMention]:
    """An unspecified code goes into a more specific record of the same concept and assertion; heart failure
    records go into the most specific one (acute on chronic, then acute, then chronic)."""
    kept: list[ConditionMention] = []
    for record in sorted(records, key=_specificity, reverse=True):
        code = record.code
        target = None
        if code is not None and record.confidence >= CODE_CONFIDENCE_THRESHOLD:
            for index, other in enumerate(kept):
                if other.code is None or other.assertion != record.assertion:
                    continue
                if _same_problem(record, other):
                    target = other
                    break
                if other.confidence >= CODE_CONFIDENCE_THRESHOLD and _same_problem(other, record):
                    # the kept record is the general wording ("enlarged prostate" beside "BPH with LUTS")
                    kept[index] = record
                    target, record = record, other
                    break
        if target is None:
            kept.append(record)
        else:
            target.merged.extend([record, *record.merged])
            record.merged = []
    return kept


def _same_problem(record: ConditionMention, other: ConditionMention) -> bool:
    """`record` is a less specific wording of `other`'s problem."""
    code, target = record.code or "", other.code or ""
    if _family(target) == _family(code) and (_unspecified(record) or code[:3] == "I50"):
        return True
    # a mental disorder's unspecified wording beside its specific one: "anxiety" (F41.9) and "GAD" (F41.1)
    if code[:1] == "F" and _unspecified(record) and code[:3] == target[:3]:
        return True
    if code in ("J10.1", "J11.1") and target[:3] in ("J10", "J11"):  # "flu A" beside "influenza A pneumonia"
        return True
    if code == "D64.9" and "D50" <= target[:3] <= "D64":  # "anemia" beside "acute blood loss anemia"
        return True
    # "HTN" beside "hypertensive nephrosclerosis"/"hypertensive heart disease" (the I11-I13 code includes it)
    if code == "I10" and target[:3] in ("I11", "I12", "I13"):
        return True
    if code == "E03.9" and target == "E06.3":  # "hypothyroidism" beside "Hashimoto hypothyroidism"
        return True
    if code == "N40.0" and target == "N40.1":  # "BPH" beside "BPH with LUTS"
        return True
    if code == "L30.9" and target[:3] == "L20":  # "eczema"/"dermatitis" beside "atopic dermatitis"
        return True
    # a substance use disorder beside the same disorder in remission ("AUD, moderate", "in early remission")
    return code[:2] == "F1" and code[:5] == target[:5] and code.endswith("0") and target.endswith("1")


def _specificity(record: ConditionMention) -> tuple[int, ...]:
    code = record.code
    if code is None:
        return (0, 0)
    if code.startswith("I50.") and len(code) == 6:
        return (2, {"3": 4, "1": 3, "2": 2}.get(code[-1], 1))
    if code == "I10":  # essential hypertension is the general wording of I11-I13
        return (0, 0, 0)
    remission = int(code[:2] == "F1" and code.endswith("1"))
    return (0 if _unspecified(record) else 1, len(code), remission)
