"""Medication reconciliation: one record per drug per note from all its mentions, and the mentions that are
not the patient's medication (refused, hypothetical, someone else's, culture results, "do not give",
leftover supply, the patient's allergen)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import Any

from medical_notes.extraction.medications import (
    MedicationMention,
    _frequency,
    _list_header,
    discharge_list,
    medication_record,
    not_taken_record,
    presumed_route,
)
from medical_notes.extraction.note_type import note_type
from medical_notes.extraction.terminology import Terminology, normalize
from medical_notes.extraction.text import NoteLayout

REFUSED = "refused"
HYPOTHETICAL = "hypothetical"
ALLERGEN = "allergen"
OTHER_PERSON = "other_person"
SUSCEPTIBILITY = "susceptibility"
DO_NOT_GIVE = "do_not_give"
NOT_TO_TAKE = "not_to_take"

# Drug classes an allergy names, and the ingredients in them.
ALLERGY_CLASSES: dict[str, frozenset[str]] = {
    "penicillin": frozenset(
        {"penicillin g", "penicillin v", "amoxicillin",
         "ampicillin", "piperacillin", "nafcillin", "oxacillin",
         "dicloxacillin"}
    ),
    "sulfa": frozenset({"sulfamethoxazole", "sulfasalazine", "sulfadiazine"}),
    "cephalosporin": frozenset(
        {"cephalexin", "cefazolin", "ceftriaxone", "cefdinir", "cefepime", "cefuroxime", "cefpodoxime"}
    ),
    "nsaid": frozenset(
        {"ibuprofen", "naproxen", "ketorolac", "meloxicam", "diclofenac", "indomethacin", "nabumetone",
         "celecoxib"}
    ),
    "fluoroquinolone": frozenset({"ciprofloxacin", "levofloxacin", "moxifloxacin"}),
    "macrolide": frozenset({"azithromycin", "erythromycin", "clarithromycin"}),
    "tetracycline": frozenset({"doxycycline", "minocycline", "tetracycline"}),
    "ace inhibitor": frozenset({"lisinopril", "enalapril", "benazepril", "ramipril", "captopril"}),
    "statin": frozenset(
        {"atorvastatin", "simvastatin", "rosuvastatin", "pravastatin", "lovastatin", "pitavastatin"}
    ),
    "opioid": frozenset(
        {"morphine", "oxycodone", "hydrocodone", "hydromorphone",
         "codeine", "fentanyl", "tramadol", "methadone"}
    ),
}  # fmt: skip
_CLASS_WORDS = (
    (re.compile(r"\b(?:pcn|penicillins?|pen)\b"), "penicillin"),
    (re.compile(r"\bsulf[ao]|\bsulfonamide"), "sulfa"),
    (re.compile(r"\bcephalosporins?\b"), "cephalosporin"),
    (re.compile(r"\bnsaids?\b"), "nsaid"),
    (re.compile(r"\b(?:fluoro)?quinolones?\b"), "fluoroquinolone"),
    (re.compile(r"\bmacrolides?\b"), "macrolide"),
    (re.compile(r"\btetracyclines\b"), "tetracycline"),
    (re.compile(r"\bace ?(?:inhibitors?|i)\b"), "ace inhibitor"),
    (re.compile(r"\bstatins\b"), "statin"),
    (re.compile(r"\bopioids?\b|\bopiates?\b|\bnarcotics?\b"), "opioid"),
)

_RELATIVE = (
    r"(?:wife|husband|spouse|partner|mom|mother|dad|father|sister|brother|son|daughter|grandmother|"
    r"grandfather|grandma|grandpa|aunt|uncle|cousin|roommate|friend|sibling|girlfriend|boyfriend|"
    r"family member|neighbou?r|child|caregiver)"
)
_OTHER_PERSON_BEFORE = re.compile(
    rf"\b{_RELATIVE}(?:'s|s')?\b(?:(?!\b(?:she|he|pt|patient)\b)[^.;\n]){{0,50}}$|\b{_RELATIVE}'s\s+(?:\w+\s+)?$",
    re.I,
)
_OTHER_PERSON_AFTER = re.compile(
    rf"^[^;\n]{{0,60}}?\b(?:in (?:\w+\s+){{0,2}}{_RELATIVE}'s name|(?:from |in )?(?:her|his|their|a|the)\s+"
    rf"{_RELATIVE}'s (?:bottle|pills|rx|prescription|supply)|not (?:hers|his|theirs)\b)",
    re.I,
)
_MALE = r"(?:husband|dad|father|brother|son|grandfather|grandpa|uncle|boyfriend)"
_FEMALE = r"(?:wife|mom|mother|sister|daughter|grandmother|grandma|aunt|girlfriend)"
# "Husband states he also took Tamiflu", "lives w/ wife (she takes warfarin)", "Wife ...; she herself takes":
# a pronoun that agrees with the relative named earlier in the sentence refers to the relative.
_OTHER_PERSON_PRONOUN = re.compile(
    rf"\b(?:{_MALE}\b[^.\n]{{0,80}}\bhe|{_FEMALE}\b[^.\n]{{0,80}}\bshe|"
    rf"{_RELATIVE}\s*\(\s*(?:she|he|they))\b(?:\s+(?:herself|himself|also|too))?"
    r"(?:\s+(?:\w+\s+){0,3}?(?:takes?|took|taking|uses?|used|is on|was on|had|has|got|gets|on))\b"
    r"[^.;\n]{0,25}$",
    re.I,
)
# a warning-signs / return-precautions list: the drug there is part of a symptom
# ("HA not relieved by Tylenol")
_PRECAUTION_LIST = re.compile(
    r"\b(?:warning signs|return precautions|red flags?|precautions reviewed|"
    r"return (?:to (?:the )?ed )?(?:if|for)|"
    r"call (?:911|us|clinic|the office|the clinic) (?:if|for))\b[^.;\n]{0,120}$",
    re.I,
)
# a refusal later in the line ("Percocet | pt asked for it - declined", "Metformin ... - pt declined")
_REFUSED_LATER = re.compile(
    r"^[^.;\n]{0,80}?(?:[-\u2013\u2014:,|]|\bpt|\bpatient)\s*(?:(?:pt|patient|she|he)\s+)?"
    r"(?:declined|declines|refused|refuses|defer\w*|avoid\w*|hold off|would not|will not|won'?t|"
    r"not (?:started(?![^.\n]{0,30}\b(?:agreed|will|plans?) to start)|prescribed|adding|advisable)|"
    r"(?:\w+\s+){0,2}prefer\w* to wait)\b",
    re.I,
)
# "Spiriva - considered, not adding", "Atomoxetine - defer", "Calcitriol not yet", "X ok if needed",
# "cefdinir is an option", "Jardiance also discussed", "Wellbutrin would help ... but avoid"
_UNDECIDED_AFTER = re.compile(
    r"^\s*(?:\(?[^()\n]{0,25}\)?\s*)?(?:[-\u2013\u2014:,]\s*)?(?:was |were |is |are )?(?:also |only )?"
    r"(?:considered|avoided|avoid|defer\w*|not yet|not adding|not needed|"
    r"discussed\b(?!\s+and\s+(?:start|prescrib))|"
    r"ok(?:ay)? if needed|(?:is |are |as )?(?:an? )?(?:options?|alternatives?)\b)|"
    r"^\s*(?:[\w/]+\s+){0,2}?(?:is|are|was|were) (?:an? )?(?:option|alternative)\b|"
    r"^\s*(?:[\w/]+\s+){0,2}?(?:would|could|might|may) (?:help|work)\b|"
    r"^\s*(?:[\w/]+\s+){1,2}(?:not indicated|not recommended|not needed)\b|"
    r"^\s*(?:is |was |would be )?not (?:useful|helpful|beneficial|appropriate)\b",
    re.I,
)
# "only if colchicine fails", "x1 today if BP allows"
_ONLY_IF_AFTER = re.compile(
    r"^[^.;\n]{0,60}?\b(?:only if|unless|if (?:\w+\s+){0,3}(?:allows?|permits?|fails?|worsens?|persists?))\b",
    re.I,
)
# "simvastatin myalgias", "acetaminophen overdose": an adverse reaction to the drug, not an order
_REACTION_AFTER = re.compile(
    r"^\s*(?:-?induced\s+|-?associated\s+)?(?:myalgias?|myopathy|overdose|intoxication|"
    r"angioedema|intolerance|side effects?)\b",
    re.I,
)
# "If mood sx worsen or seizures continue at 30 mg/kg/day -> switch to X": the consequent of a
# sentence that opens with "if"
_IF_SENTENCE_BEFORE = re.compile(
    r"(?:^|[.;:]\s|\d[.)]\s|^\s*[-*\u2022]\s)\s*if\b(?!\s+(?:needed|necessary|tolerated)\b)[^.;\n]{0,110}$",
    re.I | re.M,
)
# "Requests 'something for focus, like Adderall'", "Plan after RT: tamoxifen"
_WISH_BEFORE = re.compile(
    r"\b(?:something|anything)\b[^.;\n]{0,30}\b(?:like|such as)\s+[\"']?$|\bplan after\b[^.;\n]{0,30}$",
    re.I,
)
_SUSCEPTIBILITY_CUE = re.compile(
    r"\b(?:susceptib\w*|sensitiv\w*|sens|resistan\w*|intermediate|MIC|pan-?sensitive|antibiogram)\b|"
    r"(?<![A-Za-z])[SRI]\s*(?::|=|-)\s|(?<![A-Za-z])[SRI]\s+to\s",
)
_SUSCEPTIBILITY_AFTER = re.compile(
    r"^[\s.]*(?:[:=\-]\s*)?(?:\(?\s*[SRI]\s*\)?(?![A-Za-z])|sensitive|susceptible|resistant|intermediate|"
    r"MIC\b|<=?\s*\d|>=?\s*\d)",
)
_ORDER_VERB = re.compile(
    r"\b(?:start\w*|continu\w*|chang\w*|switch\w*|narrow\w*|de-?escalat\w*|gave|given|give|received|on|treat\w*|"
    r"transition\w*|plan)\b",
    re.I,
)
_DO_NOT_GIVE = re.compile(
    r"\b(?:do not|don'?t|never|not to be|no more)\s+(?:give|"
    r"giving|administer\w*|given|"
    r"(?:self-?)?restart|(?:self-?)?resume|re-?challenge|"
    r"use)\b[^.;\n]{0,40}$|\bdid not give\b[^.;\n]{0,30}$|"
    r"\bnot given\b[^.;\n]{0,10}$|\bno\s+$|\bwithheld\s+$",
    re.I,
)
_NOT_TO_TAKE_BEFORE = re.compile(
    r"\b(?:told|instructed|advised|asked|reminded|counsel\w*|"
    r"educated)\b[^.;\n]{0,40}\bnot to (?:take|use|restart)\b"
    r"[^.;\n]{0,40}$|\b(?:do not|don'?t|should not|shouldn'?t|not to)\s+(?:take|use)\b[^.;\n]{0,40}$|"
    r"\b(?:left-?over|left over|old (?:bottle|supply|pills|prescription|rx)|expired)\b[^.;\n]{0,30}$|"
    r"(?<!year )(?<!yr )(?<![-\w])(?:old|leftover|expired)\s+$",
    re.I,
)
_NOT_TO_TAKE_AFTER = re.compile(
    r"^[^.;\n]{0,60}?\b(?:not to (?:take|use)|do not take|don'?t take|should not take|left-?over|left over|"
    r"from (?:a |an )?(?:old|prior|previous) (?:rx|prescription|"
    r"bottle)|discard\w*|throw (?:it |them )?(?:away|out)|do not (?:restart|resume)(?!\s+until)|"
    r"take-?back|bagged|"
    r"dispose\w*|remove (?:and dispose )?(?:of )?(?:it|them|all|the))\b",
    re.I,
)
_REFUSED_BEFORE = re.compile(
    r"\b(?:hold(?:ing)? off(?: on)?|would not|will not|won'?t|"
    r"not (?:to )?(?:start|add|begin|initiat\w*|restart|"
    r"resum\w*|use|prescrib\w*|order)\w*|decided against|against|declin\w*|refus\w*|defer\w*|avoid\w*|"
    r"no indication for|not a candidate for|not recommended|no role for|"
    r"no (?:need|plan) (?:for|to (?:start|add|use))|"
    r"no (?:substitut\w*|switch\w*|replac\w*) (?:with|to|for|by)|"
    r"contraindicat\w*|not on|not taking|never (?:took|taken|on)|"
    r"denies (?:taking|use of)|intoleran\w*|instead of|rather than|in lieu of|did not tolerate|not started)\b"
    r"(?:(?!\b(?:but|however|so|then|and start|start)\b)[^.;\n]){0,40}$",
    re.I,
)
_HYPOTHETICAL_BEFORE = re.compile(
    r"\b(?:consider\w*|if|would|could|may|might|can|alternatives?|option\w*|discuss\w*|candidate for|"
    r"should\s+\w+\s+(?:develop|occur|worsen)|in case|unless|in the event|pending|possibl[ey]|potential\w*|"
    r"eventual\w*|future|down the road|trial of\s+\w+\s+if)\b(?:(?!\b(?:but|"
    r"however|so|then)\b)[^.;\n]){0,50}$",
    re.I,
)
_REFUSED_AFTER = re.compile(
    r"^\s*(?:\?\s*[-\u2013\u2014:,]*\s*(?:no|not|declined|deferred|defer|hold off)\b|"
    r"\s*\(\s*(?:not|no|declined|refused|deferred)\b|"
    r"(?:\s*[\w/]+){0,2}\s*[-\u2013\u2014:,]+\s*(?:(?:pt|patient|she|he)\s+)?(?:no\b(?!\s+(?:change|longer))|"
    r"not (?:started|given|indicated|now|a candidate)|declined|declines|refused|refuses|deferred|held off|"
    r"will not|won'?t)|"
    r"\s*(?:was |is |were )?(?:declined|refused|deferred|not started|not given|not indicated|"
    r"not recommended|discussed but|offered but|offered and declined|contraindicated|"
    r"not needed|not required)\b)",
    re.I,
)
# "Nifedipine ER would be next agent if needed", "X could be added"
_HYPOTHETICAL_AFTER = re.compile(r"^\s*(?:[\w/]+\s+){0,2}?(?:would|could|might|may) (?:be|have been)\b", re.I)
_CONDITIONAL_AFTER = re.compile(
    r"^[^.;\n]{0,50}?\bif\b(?!\s+(?:needed|necessary|required|tolerated)\b)", re.I
)
_START_VERB_BEFORE = re.compile(
    r"\b(?:start|add|begin|initiate|give|will|would|plan|switch|may|can|consider|rx)\w*\b[^.;\n]{0,30}$", re.I
)
_SWITCH_BEFORE = re.compile(
    r"\b(?:switch\w*|cross-?\s?taper\w*|chang\w*|convert\w*|transition\w*|rotat\w*|replac\w*)\s+(?:\w+\s+){0,2}?(?:from\s+)?$",
    re.I,
)
_SWITCH_BETWEEN = re.compile(
    r"^[^.;\n]{0,60}?(?:\b(?:to|for|with)\b|->|\u2192|=>)\s*(?:\w+\s+){0,2}?$",
    re.I,
)
_SWITCH_AFTER_VERB = re.compile(
    r"^[^.;\n]{0,50}?\b(?:switched|changed|converted|transitioned|replaced|rotated)\s+(?:over\s+)?(?:to|with|for)\s+"
    r"(?:\w+\s+){0,2}?$|^\s*(?:->|\u2192|=>)\s*$",
    re.I,
)


@dataclass
class Reconciled:
    medications: list[dict[str, Any]]
    not_taken: list[dict[str, Any]]
    detected_issues: list[dict[str, Any]]
    warnings: list[str]


def not_taken_reason(mention: MedicationMention, layout: NoteLayout, limit: int | None = None) -> str | None:
    """Why this mention is not the patient's own medication, or None when it is. `limit`: where the next
    drug mention starts (a cue after it is that drug's)."""
    limit = len(layout.text) if limit is None else limit
    text = layout.text
    segment = layout.segment_at(mention.start)
    line_start, line_end = layout.line_bounds(mention.start)
    before = text[segment.start : mention.start]
    after = re.split(r"[.;](?:\s|$)", text[mention.name_end : line_end])[0]
    stops = [text.rfind(stop, line_start, mention.start) for stop in (". ", "! ", "? ")]
    sentence_start = max([line_start] + [found + 2 for found in stops if found >= 0])
    if (
        layout.section_at(mention.start) == "family_history"
        or _OTHER_PERSON_BEFORE.search(before)
        or _OTHER_PERSON_PRONOUN.search(text, sentence_start, mention.start)
    ):
        return OTHER_PERSON
    if _OTHER_PERSON_AFTER.match(text[mention.name_end : line_end]):
        return OTHER_PERSON
    line_before = text[line_start : mention.start]
    orders = list(_ORDER_VERB.finditer(line_before))
    since_order = line_before[orders[-1].end() :] if orders else line_before
    since_order = re.sub(r"^\s*[SOAP]\s*:\s", "", since_order)  # a SOAP heading ("S: 58F ...")
    if _SUSCEPTIBILITY_CUE.search(since_order) or _SUSCEPTIBILITY_AFTER.match(
        text[mention.name_end : line_end]
    ):
        return SUSCEPTIBILITY
    if _culture_block(layout, line_start):
        return SUSCEPTIBILITY
    if _DO_NOT_GIVE.search(before):
        return DO_NOT_GIVE
    if _REACTION_AFTER.match(after):
        return ALLERGEN
    if _NOT_TO_TAKE_BEFORE.search(before) or _NOT_TO_TAKE_AFTER.match(after):
        return NOT_TO_TAKE
    later = text[mention.name_end : min(line_end, limit)]
    if _REFUSED_BEFORE.search(before):
        return REFUSED
    # "Stop ASA 81 - no CAD/stent": the reason for a stop, not a refusal
    stop_verb = re.search(r"\b(?:stop|d/c|dc|discontinue|hold|taper off|wean off)\s+$", before, re.I)
    if not stop_verb and (_REFUSED_AFTER.match(after) or _REFUSED_LATER.match(later)):
        return REFUSED
    if not stop_verb and _UNDECIDED_AFTER.match(after):
        return REFUSED
    if _ONLY_IF_AFTER.match(after) or _WISH_BEFORE.search(before) or _IF_SENTENCE_BEFORE.search(line_before):
        return HYPOTHETICAL
    if stop_verb and re.match(
        r"\s*(?:[\w/()-]+\s+){0,2}?and\s+(?:call|seek|go to|come|return|contact|notify|page)\b", after, re.I
    ):
        return HYPOTHETICAL  # "Stop Ozempic and call if severe abdominal pain": a return precaution
    if _PRECAUTION_LIST.search(line_before):
        return HYPOTHETICAL
    if _HYPOTHETICAL_BEFORE.search(before) or _HYPOTHETICAL_AFTER.match(after):
        return HYPOTHETICAL
    if _CONDITIONAL_AFTER.match(after) and _START_VERB_BEFORE.search(before) and not mention.as_needed:
        return HYPOTHETICAL
    return None


def _culture_block(layout: NoteLayout, line_start: int) -> bool:
    """A line of a culture report's susceptibility list ("Sensitivities:" above, "ampicillin   R")."""
    text = layout.text
    line = text[line_start : layout.line_bounds(line_start)[1]]
    if not re.search(r"(?<![A-Za-z])[SRI](?![A-Za-z])\s*$|\b(?:sensitive|resistant|susceptible)\s*$", line):
        return False
    above = text[max(0, line_start - 300) : line_start]
    return bool(
        re.search(
            r"\b(?:culture|cx|susceptib\w*|sensitivit\w*|isolate|organism|BAL|aureus|MSSA|MRSA|coli|"
            r"Klebsiella|Pseudomonas|Enterococc\w*|Streptococc\w*|Staphylococc\w*|Proteus|Enterobacter)\b",
            above,
            re.I,
        )
    )


def allergy_classes(substance: str, terms: Terminology) -> tuple[set[str], set[str]]:
    """The ingredient names and the drug classes an allergy names."""
    words = normalize(substance)
    names: set[str] = set()
    rxcui = terms.drug_names.get(words)
    if rxcui:
        names.add(terms.ingredients[rxcui].name)
    product = terms.product_names.get(words)
    if product:
        names.update(terms.ingredients[c].name for c in terms.products[product].ingredients)
    for word in words.split():
        found = terms.drug_names.get(word)
        if found:
            names.add(terms.ingredients[found].name)
    classes = {cls for pattern, cls in _CLASS_WORDS if pattern.search(words)}
    for cls, _members in ALLERGY_CLASSES.items():
        if names & {cls}:
            classes.add(cls)
    if "penicillin g" in names or "penicillin v" in names or re.search(r"\bpenicillin", words):
        classes.add("penicillin")
    return names, classes


def reconcile(
    mentions: list[MedicationMention],
    layout: NoteLayout,
    terms: Terminology,
    allergies: list[tuple[str, tuple[int, int]]],
) -> Reconciled:
    text = layout.text
    for index, mention in enumerate(mentions):
        following = mentions[index + 1].start if index + 1 < len(mentions) else None
        mention.not_taken = not_taken_reason(mention, layout, following)
    _same_drug_refused_nearby(mentions, text)
    _components(mentions, text)
    _switches(mentions, text)
    _list_propagation(mentions, text)
    _plan_starts(mentions, layout)
    _one_time_doses(mentions, layout)

    allergen_of: dict[str, tuple[str, tuple[int, int]]] = {}
    for substance, span in allergies:
        names, classes = allergy_classes(substance, terms)
        members = set(names)
        for cls in classes:
            members |= ALLERGY_CLASSES.get(cls, frozenset())
        for mention in mentions:
            ingredient_names = {
                terms.ingredients[c].name for c in (mention.combination or (mention.rxcui,)) if c
            }
            if ingredient_names & members:
                allergen_of.setdefault(mention.key, (substance, span))

    not_taken: list[dict[str, Any]] = []
    issues: list[dict[str, Any]] = []
    warnings: list[str] = []
    groups: dict[str, list[MedicationMention]] = {}
    for mention in mentions:
        if mention.key in allergen_of and mention.not_taken is None:
            substance, span = allergen_of[mention.key]
            mention.not_taken = ALLERGEN
            if not any(issue["medication"] == mention.name for issue in issues):
                detail = f"{mention.name} ordered/listed for a patient with a documented {substance} allergy"
                issues.append(
                    {
                        "kind": "drug-allergy",
                        "medication": mention.name,
                        "allergy": substance,
                        "span": [mention.start, mention.end],
                        "allergy_span": list(span),
                        "detail": detail,
                    }
                )
                warnings.append(f"medication at [{mention.start}, {mention.end}]: {detail}; not emitted")
        if mention.not_taken is not None:
            not_taken.append(not_taken_record(mention, text, terms))
            continue
        groups.setdefault(mention.key, []).append(mention)

    has_discharge_list = any(discharge_list(layout, m.start) for m in mentions)
    medications = []
    for group in groups.values():
        final = _final_state(group, layout)
        if (
            has_discharge_list
            and final.route == "intravenous"
            and final.status in ("started", "active")
            and not any(discharge_list(layout, m.start) for m in group)
        ):
            # an IV drug of the hospital stay that the discharge medication list does not carry: finished
            final.status = "stopped"
        medications.append(medication_record(group, final, text, terms))
    medications.sort(key=lambda m: m["mentions"][0]["span"][0])
    return Reconciled(medications, not_taken, issues, warnings)


def _same_drug_refused_nearby(mentions: list[MedicationMention], text: str) -> None:
    """ "Pt requested the Toradol ... - do NOT give ketorolac": a bare mention (no dose, no status) followed
    in the same line by a not-given/refused mention of the same drug shares its reason."""
    for first, second in itertools.pairwise(mentions):
        if (
            first.not_taken is None
            and second.not_taken in (REFUSED, DO_NOT_GIVE, NOT_TO_TAKE)
            and first.key == second.key
            and first.dose is None
            and first.status is None
            and "\n" not in text[first.end : second.start]
            and second.start - first.end < 120
        ):
            first.not_taken = second.not_taken


def _components(mentions: list[MedicationMention], text: str) -> None:
    """ "Augmentin ES-600 (600 mg/42.9 mg per 5 mL), 90 mg/kg/day amoxicillin component div BID": an
    ingredient named right after a combination product, in the same line, is that product's sig, not a drug
    of its own."""
    for product, part in itertools.pairwise(mentions):
        if (
            product.combination
            and part.rxcui is not None
            and part.rxcui in product.combination
            and "\n" not in text[product.start : part.start]
            and part.start - product.end < 80
            and not part.not_taken
            # "d/c Janumet (no DPP-4 w/ GLP-1) -> metformin ER 1000 mg": a switch to the single ingredient
            and not re.search(
                r"->|\u2192|=>|\b(?:to|switch\w*|change\w*)\s*$", text[product.name_end : part.start]
            )
        ):
            part.rxcui, part.combination, part.product = None, product.combination, product.product
            part.name, part.brand = product.name, product.brand


def _switches(mentions: list[MedicationMention], text: str) -> None:
    """ "switch A to B", "A changed to B", "A -> B": A stopped, B started."""
    for first, second in itertools.pairwise(mentions):
        if first.key == second.key or first.not_taken or second.not_taken:
            continue
        between = text[first.name_end : second.start]
        if "\n" in between.strip(" \t") and not re.search(r"(?:->|\u2192)\s*$", between):
            continue
        before = text[max(0, first.start - 40) : first.start]
        if (_SWITCH_BEFORE.search(before) and _SWITCH_BETWEEN.match(between)) or _SWITCH_AFTER_VERB.match(
            between
        ):
            cross_taper = re.search(r"cross-?\s?taper", before + between, re.I)
            first.status, first.status_from_before = ("changed" if cross_taper else "stopped"), False
            second.status, second.status_from_before = "started", False


def _list_propagation(mentions: list[MedicationMention], text: str) -> None:
    """ "hold lisinopril, HCTZ and metformin": the verb before the first drug covers the rest of the list."""
    for first, second in itertools.pairwise(mentions):
        if second.status is not None or not first.status_from_before or second.not_taken:
            continue
        between = text[first.end : second.start]
        joined = not between.strip() and re.search(
            r"(?:[,/&+]|\band|\bor)\s*$", text[first.start : first.end]
        )
        if joined or re.fullmatch(r"\s*(?:,|/|and|or|&|\+|,\s*and)\s*", between):
            second.status, second.status_from_before = first.status, True
            if first.not_taken and not second.not_taken:
                second.not_taken = first.not_taken


# a list under "Plan / d/c:", "Discharge Rx:", "Prescriptions:"
_PLAN_HEADER = re.compile(r"^(?:plan\b|(?:discharge |d/c )?(?:rx|prescriptions?)\s*:)", re.I)


def _plan_starts(mentions: list[MedicationMention], layout: NoteLayout) -> None:
    """A drug first named in the plan with no verb is one the plan starts. An ICU or nursing note's plan
    lists the running orders ("Proph: heparin 5000 units SQ q8h"): no start there."""
    if note_type(layout.text) in ("icu", "nursing"):
        return
    seen: set[str] = set()
    for mention in mentions:
        if mention.not_taken:
            continue
        if (
            mention.status is None
            and mention.key not in seen
            and (
                layout.section_at(mention.start) in ("plan", "assessment_plan")
                or _PLAN_HEADER.search(_list_header(layout, layout.line_bounds(mention.start)[0]) or "")
            )
        ):
            mention.status = "started"
        # a bare name outside the medication list ("no reaction to amoxicillin in past") is no current order
        if mention.status or mention.details or layout.section_at(mention.start) == "medications":
            seen.add(mention.key)


_GIVEN = re.compile(
    r"\b(?:given|administered|gave|x\s?1(?!\d)(?!\s*(?:wks?|weeks?|days?|d\b|mos?\b|months?))|stat|"
    r"at triage|in (?:the )?ED|"
    r"first dose (?:given|here|now))\b",
    re.I,
)


_TIMED_ENTRY = re.compile(
    r"\s*(?:[-*\u2022|]\s*)?(?:[01]\d|2[0-3]):?[0-5]\d(?:h|hrs)?\b(?!\s*(?:mg|mcg|g|units?|mL)\b)"
)


def _one_time_doses(mentions: list[MedicationMention], layout: NoteLayout) -> None:
    """ "ASA 324 mg PO given", "ketorolac 15 mg IV x1", "ceftriaxone 1 g IV given; ondansetron 4 mg IV": a
    dose given once here is a started order; with no frequency of its own its frequency is "once"."""
    text = layout.text
    for mention in mentions:
        if mention.not_taken or mention.status not in (None, "active", "started"):
            continue
        line_start, line_end = layout.line_bounds(mention.start)
        clause = re.split(r"[;.](?:\s|$)", text[mention.name_end : line_end])[0]
        given_here = _GIVEN.search(clause)
        # a list line whose first item says "given": its other dosed items were given too
        given_in_line = (
            mention.dose is not None
            and mention.frequency is None
            and _GIVEN.search(text[line_start:line_end])
            and ";" in text[line_start:line_end]
        )
        if not (given_here or given_in_line):
            continue
        if _TIMED_ENTRY.match(text, line_start, line_end) and not re.search(r"\bx\s?1\b|\bonce\b", clause):
            continue  # "1400 ... metoprolol 25 mg given": a nursing administration of a standing order
        if mention.status_from_before and mention.status == "active":
            continue  # "continue X ... given" keeps the patient's own order
        if _standing_order_given(mention, layout, clause):
            continue
        mention.status = "started"
        if mention.frequency is None and mention.dose is not None:
            mention.frequency = _frequency("once")


_MAR_CONTEXT = re.compile(
    r"\b(?:administered (?:this shift|today|overnight|tonight)|meds? administered|(?-i:MAR)\b|"
    r"medication administration)",
    re.I,
)


def _standing_order_given(mention: MedicationMention, layout: NoteLayout, clause: str) -> bool:
    """ "ondansetron 4 mg IV q6h prn nausea: given 0905" under "Medications administered this shift": a
    nurse giving a dose of a standing (scheduled or prn) order, which stays the patient's active order."""
    if re.search(r"\bx\s?1\b|\bonce\b|\bstat\b|\bnow\b", clause, re.I):
        return False
    line_start = layout.line_bounds(mention.start)[0]
    if _MAR_CONTEXT.search(layout.text, max(0, line_start - 1500), line_start):
        return True
    frequency = mention.frequency or {}
    return bool(
        frequency
        and frequency.get("code") != "once"
        and re.search(r"\bgiven\s+(?:at\s+)?(?:[01]\d|2[0-3]):?[0-5]\d\b", clause, re.I)
    )


_WRITES_ROUTES = re.compile(r"\b(?:PO|IV|SC|SQ|IM)\b")


_SCHEDULE_STEP = re.compile(
    r"\s*(?:[-*\u2022]\s*)?(?:wk|wks|week|weeks|day|days|d|month|mo)\.?\s*\d+(?:\s*[-\u2013]\s*\d+)?\s*[:)\-\u2013]",
    re.I,
)


def _schedule(group: list[MedicationMention], layout: NoteLayout) -> list[MedicationMention]:
    """The mentions in the steps of a written schedule ("Wk 1: sertraline 100 mg + start venlafaxine ...")."""
    return [m for m in group if _SCHEDULE_STEP.match(layout.text, layout.line_bounds(m.start)[0], m.start)]


def _final_state(group: list[MedicationMention], layout: NoteLayout) -> MedicationMention:
    """Status from the last decisive mention; dose, route, frequency from the last mention that says them.
    A written schedule (taper, cross-taper) counts from its first step: its later steps, and the "stop" that
    ends a taper, are the plan ahead, so a drug being tapered is "changed" and a drug the schedule starts
    keeps its first step's dose."""
    steps = _schedule(group, layout)
    tapered = False
    if steps:
        later = steps[1:]
        tapered = group[0] not in steps and any(m.status in ("stopped", "changed") for m in later)
        group = [m for m in group if m not in later]
        if (
            tapered
            and group[-1] in steps
            and group[-1].status == "started"
            and not group[-1].status_from_before
        ):
            group[-1] = replace(
                group[-1], status=None
            )  # "sertraline 100 mg + start venlafaxine": the other drug's cue
    status: str | None = None
    for mention in group:
        if mention.status is not None:
            status = mention.status
        elif status in ("held", "stopped") and discharge_list(layout, mention.start):
            status = "active"  # listed again among the discharge medications: resumed
    if tapered and status != "held":
        status = "changed"
    final = replace(group[-1], status=status or "active")
    for field in ("dose", "route", "frequency", "duration"):
        for mention in reversed(group):
            value = getattr(mention, field)
            if value is not None:
                setattr(final, field, value)
                break
    if final.route is None and _WRITES_ROUTES.search(layout.text):
        # a note that writes routes in clinical shorthand ("PO", "IV") leaves the default one unsaid
        names = [n.strip() for n in final.name.split(" / ")]
        final.route = presumed_route(names)
    for mention in reversed(group):
        if mention.as_needed or mention.dose is not None or mention.frequency is not None:
            final.as_needed = mention.as_needed
            break
    # the dose of the final state: a "changed" mention's new dose wins over a later listing
    changed = [m for m in group if m.status == "changed" and m.dose is not None]
    if changed and status == "changed":
        final.dose = changed[-1].dose
    return final
