"""Medication mentions: ingredient (RxNorm), dose, route, frequency, PRN, duration and status."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from medical_notes.extraction.lexicon import PhraseIndex, Token, find_phrases
from medical_notes.extraction.terminology import RXNORM_SYSTEM, Product, Terminology, normalize, product_key
from medical_notes.extraction.text import NoteLayout

# Abbreviations notes use for ingredients -> the ingredient's name in the table.
ABBREVIATIONS = {
    "asa": "aspirin",
    "apap": "acetaminophen",
    "hctz": "hydrochlorothiazide",
    "ntg": "nitroglycerin",
    "nitro": "nitroglycerin",
    "kcl": "potassium chloride",
    "mtx": "methotrexate",
    "ppi": None,
    "nph": None,
    "amox": "amoxicillin",
    "vanco": "vancomycin",
    "doxy": "doxycycline",
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
    "solumedrol": "methylprednisolone",
    "toprol": "metoprolol",
    "metoprolol succinate": "metoprolol",
    "metoprolol tartrate": "metoprolol",
    "norepi": "norepinephrine",
    "5-fu": "fluorouracil",
    "5 fu": "fluorouracil",
    "vitamin d": "cholecalciferol",
    "5fu": "fluorouracil",
    "mag sulfate": "magnesium sulfate",
    "mg sulfate": "magnesium sulfate",
    "mgso4": "magnesium sulfate",
    "glargine": "insulin glargine",
    "lispro": "insulin lispro",
    "aspart": "insulin aspart",
}
# The unit a bare number after the drug name means ("ASA 81", "Synthroid 88", "Lantus 20 qhs").
UNIT_FOR_BARE_DOSE = {
    "levothyroxine": "ug",
    "liothyronine": "ug",
    "cyanocobalamin": "ug",
    "heparin": "[iU]",
    "cholecalciferol": "[iU]",
    "ergocalciferol": "[iU]",
    "epoetin alfa": "[iU]",
    "potassium chloride": "meq",
}
# Drugs whose bare number is not a dose in mg (inhalers, drops, creams, patches, insulin scales).
NO_BARE_DOSE = frozenset(
    {
        "albuterol",
        "fluticasone",
        "fluticasone propionate",
        "budesonide",
        "salmeterol",
        "formoterol",
        "tiotropium",
        "ipratropium",
        "mometasone",
        "beclomethasone",
        "latanoprost",
        "timolol",
        "lactulose",
        "fentanyl",
        "nicotine",
        "lidocaine",
        "mupirocin",
        "clotrimazole",
        "nystatin",
        "triamcinolone",
        "hydrocortisone",
        "diclofenac",
        "testosterone",
        "estradiol",
        "polyethylene glycol",
        "carboplatin",
    }
)

# Ingredients given by injection, infusion, inhalation or on the skin in practice: a sig without a route is
# not presumed oral for these (the rest are taken by mouth when the note names no route).
NOT_PRESUMED_ORAL = frozenset(
    {
        "ceftriaxone", "cefazolin", "cefepime", "ceftazidime", "piperacillin", "tazobactam", "meropenem",
        "vancomycin", "gentamicin", "tobramycin", "ampicillin", "nafcillin", "oxacillin", "daptomycin",
        "heparin", "enoxaparin", "fondaparinux", "norepinephrine", "epinephrine", "vasopressin",
        "phenylephrine", "dopamine", "dobutamine", "propofol", "dexmedetomidine", "midazolam", "fentanyl",
        "ketorolac", "naloxone", "magnesium sulfate", "sodium chloride", "carboplatin", "paclitaxel",
        "cisplatin", "oxaliplatin", "fluorouracil", "leucovorin", "pembrolizumab", "durvalumab",
        "epoetin alfa", "adalimumab", "semaglutide", "dulaglutide", "liraglutide", "tirzepatide",
        "medroxyprogesterone", "levonorgestrel", "testosterone", "triamcinolone", "hydrocortisone",
        "methylprednisolone", "dexamethasone", "morphine", "hydromorphone", "lidocaine", "nitroglycerin",
        "sodium zirconium cyclosilicate", "cyanocobalamin", "ferric carboxymaltose", "iron sucrose",
        "haloperidol", "lorazepam",
    }
)  # fmt: skip
# ... and of those, the ones only given intravenously: a sig without a route is an infusion.
PRESUMED_INTRAVENOUS = frozenset(
    {
        "ceftriaxone", "cefazolin", "cefepime", "ceftazidime", "piperacillin", "meropenem", "vancomycin",
        "gentamicin", "tobramycin", "nafcillin", "daptomycin", "norepinephrine", "vasopressin",
        "phenylephrine", "dopamine", "dobutamine", "propofol", "dexmedetomidine", "magnesium sulfate",
        "carboplatin", "paclitaxel", "cisplatin", "oxaliplatin", "fluorouracil", "pembrolizumab",
        "durvalumab", "ferric carboxymaltose", "iron sucrose",
    }
)  # fmt: skip

ROUTES: tuple[tuple[str, str], ...] = (
    (r"by mouth|p\.?o\.?|orally|oral|per os|chewable|chewed", "oral"),
    (r"sublingual(?:ly)?|s\.?l\.?", "sublingual"),
    (r"subcutaneous(?:ly)?|subcut|sub-q|subq|s\.?c\.?|s\.?q\.?", "subcutaneous"),
    (r"intramuscular(?:ly)?|i\.?m\.?", "intramuscular"),
    (r"intravenous(?:ly)?|i\.?v\.?|ivpb|iv push|infusion", "intravenous"),
    (r"nebuli[sz]ed|nebuli[sz]er|nebs?", "nebulized"),
    (r"inhaled|inhale|inhalation|inhaler|inh|mdi|hfa|dpi|puffs?", "inhaled"),
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
    (r"(?:every|q\.?)\s*(\d{1,2})\s*(?:min|mins|minutes)\b", "q{n}min", 1, 0, "min", None),
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
    # "once" as a conjunction ("KCl once refilled") and "x 1 wk" (a duration) are not a single dose
    (
        r"once(?!\s+(?!daily|weekly|a\b|per\b|only\b|now\b|today\b|dose\b)[a-z]{2,})|one time|single dose|"
        r"x\s?1(?!\d)(?!\s*(?:wks?|weeks?|days?|d\b|mos?\b|months?|hrs?\b|h\b))|stat",
        "once",
        1,
        0,
        "",
        None,
    ),
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
    r"(?<![\w.,/])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)\s*(?:-\s*\d+(?:\.\d+)?\s*)?"
    r"((?:mg|mcg|µg|ug|units?|u|iu)\s*/\s*(?:kg|m2|m²|m\^2)(?:\s*/\s*(?:day|d|24\s?h|min|hr|h))?|"
    r"(?:mg|mcg|µg|ug|units?|u|iu|ml|meq)\s*/\s*(?:hr|h|hour|min)|"
    r"mg|mcg|µg|ug|g|gm|grams?|milligrams?|micrograms?|ml|mL|meq|mEq|mmol|units?|iu|IU|u|puffs?|tablets?|tabs?|"
    r"capsules?|caps?|drops?|gtts?|sprays?|patch(?:es)?|%)(?![\w])",
    re.I,
)
_COUNT_UNITS = ("puff", "tab", "cap", "drop", "gtt", "spray", "patch")
_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "half": 0.5, "1/2": 0.5}
_WORD_COUNT_DOSE = re.compile(
    r"(?<![\w/])(one|two|three|four|half|1/2)(?:\s+a)?\s+(puffs?|tablets?|tabs?|capsules?|caps?|drops?|sprays?|patch(?:es)?)\b",
    re.I,
)

# "d/c" that means discharge ("per d/c list", "started at d/c") is no stop
_DC = (
    r"(?<!at )(?<!on )(?<!upon )(?<!after )(?<!by )d/c"
    r"(?!\s*(?:list|summary|meds?|medications?|instructions|paperwork|rx|planning|dispo))"
)
STATUS_TRIGGERS: tuple[tuple[str, str], ...] = (
    (
        r"discontinu\w*|"
        rf"{_DC}'?d?"
        r"|dc'?d|stop(?:ped|ping|s)?|"
        r"quit|cease\w*|no longer (?:taking|on)|off|completed",
        "stopped",
    ),
    (r"hold(?:ing|s)?|held|paus\w+|suspend\w*|on hold", "held"),
    (
        r"increas\w*|decreas\w*|reduc\w*|titrat\w*|chang\w*|switch\w*|adjust\w*|uptitrat\w*|"
        r"downtitrat\w*|taper\w*|lower\w*|rais\w*|doubl\w*|halv\w*",
        "changed",
    ),
    (
        r"start\w*|begin|began|initiat\w*|add(?:ed|ing)?|new(?:ly)?|prescrib\w*|rx|trial of|commence\w*",
        "started",
    ),
    (
        r"continu\w*|resum\w*|restart\w*|re-?start\w*|remain\w* on|keep|maintain\w*|still (?:taking|on)|"
        r"takes|taking|on",
        "active",
    ),
)
_STATUS_PATTERNS = [
    (re.compile(rf"(?<![\w/])(?:{p})(?![\w])", re.I), status) for p, status in STATUS_TRIGGERS
]
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
    combination: tuple[str, ...] = ()  # ingredient RxCUIs of a combination product, in `name` order
    block_end: int = 0  # end of the sig with its indication ("for knee pain"): not a condition of its own
    brand: str | None = None
    product: Product | None = None
    not_taken: str | None = None  # why this mention is not the patient's medication (reason code)
    status: str | None = None  # the status this mention implies
    status_from_before: bool = False  # from a verb before the name ("hold X, Y"): it also covers Y
    dose: dict[str, Any] | None = None
    route: str | None = None
    frequency: dict[str, Any] | None = None
    as_needed: bool = False
    duration: dict[str, Any] | None = None
    previous_end: int = 0  # where the drug mention before this one ends (its cues are not this drug's)
    next_start: int = 0  # where the next drug mention starts (0: none)
    regimen_frequency: bool = False  # "weekly carboplatin ... + paclitaxel": a frequency for the regimen

    @property
    def key(self) -> str:
        return self.rxcui or product_key(self.combination)

    @property
    def details(self) -> int:
        return sum(x is not None for x in (self.dose, self.route, self.frequency)) + self.as_needed


_PRODUCT_VALUE = "product:"


@cache
def drug_index(terms: Terminology) -> PhraseIndex:
    """Ingredient, brand and combination-product names of the tables plus the abbreviations notes use."""
    names = {key: _PRODUCT_VALUE + product for key, product in terms.product_names.items()}
    for key, rxcui in terms.drug_names.items():
        names.setdefault(key, rxcui)
    for abbreviation, ingredient in ABBREVIATIONS.items():
        if ingredient is not None and normalize(ingredient) in terms.drug_names:
            names.setdefault(abbreviation, terms.drug_names[normalize(ingredient)])
    return PhraseIndex(names)


_COMBINATION_JOINERS = ("-", "/", " / ", "\u2013", " + ", "+", " and ", " & ")


# "All: codeine (N/V)", "Intol: atorvastatin (myalgias)", "ALLERGY/ADR: haloperidol - dystonia": an allergy
# or intolerance entry on the line, not a medication
_ALLERGY_LABEL = re.compile(
    r"(?:^|[.;|]\s*)\s*(?:all|allerg\w*|intol\w*|adrs?|allergy/adr|adverse (?:drug )?reactions?|"
    r"drug allerg\w*|sensitivities)\s*:[^:.;]*$",
    re.I | re.M,
)


# "Vitamin D deficiency", "B12 level", "lithium toxicity": a finding or a lab, not the drug
_NOT_A_DRUG_AFTER = re.compile(
    r"\s+(?:25-?\s?(?:oh|hydroxy)\s+)?(?:deficiency|deficient|insufficiency|toxicity|levels?)\b", re.I
)


def find_medication_mentions(
    layout: NoteLayout, tokens: list[Token], terms: Terminology, allergy_spans: list[tuple[int, int]]
) -> list[MedicationMention]:
    text = layout.text
    matches = [
        m
        for m in find_phrases(text, tokens, drug_index(terms))
        if layout.section_at(m.start) != "allergies"
        and not any(s <= m.start < e for s, e in allergy_spans)
        and not _ALLERGY_LABEL.search(text, layout.line_bounds(m.start)[0], m.start)
        and not _NOT_A_DRUG_AFTER.match(text, m.end)
    ]
    mentions: list[MedicationMention] = []
    skip_until = -1
    for index, match in enumerate(matches):
        if match.start < skip_until:
            continue
        name_end = match.end
        product: Product | None = None
        rxcui: str | None = None
        if match.value.startswith(_PRODUCT_VALUE):
            product = terms.products[match.value[len(_PRODUCT_VALUE) :]]
        else:
            rxcui = match.value
        following = matches[index + 1] if index + 1 < len(matches) else None
        consumed = 0
        # "sacubitril-valsartan", "albuterol/ipratropium": one product of two ingredients
        if (
            rxcui is not None
            and following
            and not following.value.startswith(_PRODUCT_VALUE)
            and following.value != rxcui
            and text[match.end : following.start] in _COMBINATION_JOINERS
            and (
                text[match.end : following.start].strip() in ("-", "/", "\u2013", "+")
                or _known_pair(terms, rxcui, following.value)
            )
            and not (
                # "metformin + Jardiance", "olanzapine + Zofran": two drugs, not one product
                text[match.end : following.start].strip() == "+"
                and (
                    normalize(text[match.start : match.end]) in terms.brand_names
                    or normalize(text[following.start : following.end]) in terms.brand_names
                )
            )
        ):
            codes = (rxcui, following.value)
            product = terms.products.get(product_key(codes)) or _ad_hoc_product(terms, codes)
            rxcui = None
            name_end = following.end
            skip_until = following.end
            consumed = 1
        limit = matches[index + 1 + consumed].start if index + 1 + consumed < len(matches) else len(text)
        end_match = _MEDICATION_END.search(text, name_end, limit)
        line_start, line_end = layout.line_bounds(name_end)
        if text[line_start:line_end].lstrip().startswith("|"):  # a table row: the sig is the rest of the row
            sig_end = min(limit, len(text[:line_end].rstrip().rstrip("|").rstrip()))
        else:
            sig_end = end_match.start() if end_match else min(limit, line_end)
        end = _trim_sig(text, name_end, sig_end)
        indication = re.match(r"\s+(?:as needed |prn )?for (?!\d)[^,;.()]*", text[end:sig_end])
        block_end = end + indication.end() if indication else end
        matched_text = normalize(text[match.start : match.end])
        brand = terms.brand_names.get(matched_text)
        if product is not None:
            name = product.name
            combination = product.ingredients
        else:
            assert rxcui is not None
            name = terms.ingredients[rxcui].name
            combination = ()
            if brand is not None and normalize(name) == matched_text:
                brand = None
        mentions.append(
            MedicationMention(
                match.start,
                end,
                name_end,
                rxcui,
                name,
                combination,
                block_end,
                brand=brand,
                product=product,
            )
        )
    for previous, mention in itertools.pairwise(mentions):
        # "holding home lisinopril and metformin": a list shares the verb before its first drug
        joined = re.fullmatch(
            r"\s*(?:,|/|&|\+|and|or)\s*(?:and\s+|or\s+)?|", text[previous.name_end : mention.start]
        )
        mention.previous_end = 0 if joined else previous.end
        previous.next_start = mention.start
    for mention in mentions:
        _describe(mention, layout, terms)
    for previous, mention in itertools.pairwise(mentions):
        # "weekly carboplatin AUC 2 + paclitaxel 45 mg/m2": a regimen joined by "+" shares its frequency
        if (
            mention.frequency is None
            and previous.regimen_frequency
            and re.fullmatch(r"[^\n;.]{0,25}\+\s*", text[previous.name_end : mention.start])
        ):
            mention.frequency = previous.frequency
    return mentions


def _known_pair(terms: Terminology, first: str, second: str) -> bool:
    return product_key((first, second)) in terms.products


def _ad_hoc_product(terms: Terminology, codes: tuple[str, ...]) -> Product:
    by_name = {terms.ingredients[code].name: code for code in codes}
    ordered = tuple(by_name[n] for n in sorted(by_name))
    return Product(product_key(codes), " / ".join(sorted(by_name)), None, ordered, (), (), "note", "")


def _describe(mention: MedicationMention, layout: NoteLayout, terms: Terminology) -> None:
    text = layout.text
    sig = text[mention.name_end : mention.end]
    mention.status, mention.status_from_before = _status(layout, mention)
    mention.dose = _dose(sig, mention, terms)
    mention.route = _route(text[mention.start : mention.end])
    arrow = re.search(r"(?:->|\u2192|=>)\s*(?=\d)", sig)
    mention.frequency = (arrow and _frequency(sig[arrow.end() :])) or _frequency(sig)
    if mention.frequency is None and mention.dose and re.search(r"/(?:h|min)$", mention.dose["unit"]):
        mention.frequency = _frequency("continuous")  # an infusion rate
    if mention.frequency is None:  # "weekly carboplatin AUC 2": the frequency before the name
        before = re.search(
            r"\b(weekly|daily|nightly|monthly)\s+$", text[max(0, mention.start - 12) : mention.start], re.I
        )
        if before:
            mention.frequency = _frequency(before.group(1))
            mention.regimen_frequency = True
    mention.as_needed = bool(_PRN.search(sig))
    mention.duration = _duration(sig)
    if mention.route is None:
        mention.route = _implied_route(text[mention.start : mention.end], mention)


def presumed_route(names: list[str]) -> str | None:
    """The route a drug is given by when the note names none: by mouth for oral drugs, intravenous for the
    infusion-only ones, else unknown."""
    if names and all(n in PRESUMED_INTRAVENOUS for n in names):
        return "intravenous"
    return "oral" if presumed_oral(names) else None


def presumed_oral(names: list[str]) -> bool:
    """A drug taken by mouth when the note names no route (not an injectable, inhaled or topical one)."""
    return bool(names) and not any(
        n in NOT_PRESUMED_ORAL or n in NO_BARE_DOSE or n.startswith("insulin") for n in names
    )


def _implied_route(mention_text: str, mention: MedicationMention) -> str | None:
    """The route the form implies when the sig names none: an infusion rate or drip is intravenous, a tablet
    or capsule oral, an inhaler device inhaled, insulin subcutaneous."""
    unit = (mention.dose or {}).get("unit", "")
    if re.search(r"/(?:h|min)$", unit) or re.search(r"\b(?:gtt|drip)\b", mention_text, re.I):
        return "intravenous"
    if unit in ("{tbl}", "{capsule}") or re.search(
        r"\b(?:tabs?|tablets?|caps?|capsules?|ODT|chew(?:ed|able)?|liquid|suspension|elixir|syrup)\b",
        mention_text,
        re.I,
    ):
        return "oral"
    if re.search(
        r"\b(?:per|via|through)\s+(?:the\s+)?(?:tube|OGT|NGT|OG|NG|PEG|G-?tube|J-?tube|FT)\b",
        mention_text,
        re.I,
    ):
        return "oral"  # enteral, through a feeding tube
    if re.search(r"nebs?\b|nebuli", mention_text, re.I):
        return "nebulized"
    if re.search(
        r"\b(?:ellipta|respimat|diskus|handihaler|turbuhaler|flexhaler|pressair)\b", mention_text, re.I
    ):
        return "inhaled"
    if mention.name.startswith("insulin"):
        return "subcutaneous"
    return None


def _trim_sig(text: str, name_end: int, end: int) -> int:
    """Cut the sig where what follows is no longer about the drug (indication, comments)."""
    sig = text[name_end:end]
    for pattern in (
        r"\s+for (?!\d)(?!the next)",
        r",\s+(?:more|which|who|because|since|but|given|due|as|with|after|while|when|per|and|so|then|"
        r"pending|likely|if|until|since|was|were|is|has|had|now|will|plan|also|she|he|they|pt|patient)\b",
        r"\s+(?:because|given|due to|secondary to|since|while|when|which|as (?:she|he|they|pt|patient))\b",
        r"\s+[-\u2013\u2014]{1,2}\s+(?=[a-z]{3,}\s+[a-z]{3,}\s+[a-z]{3,})",
        r"\s+\((?=[^)]*\b(?:held|stopped|started|new|increased|decreased|changed|discontinued|resumed)\b)",
        r"\s+(?:[-\u2013\u2014:]+\s*)?(?:held|stopped|discontinued|d/c'?d|resumed|restarted|started|continued|"
        r"hold|stop|continue|resume)\b",
    ):
        found = re.search(pattern, sig, re.I)
        if found:
            sig = sig[: found.start()]
    sig = sig.rstrip(" ,:-\u2013\u2014")
    if sig.endswith(")") and "(" not in sig:
        sig = sig[:-1]
    return name_end + len(sig)


def medication_record(
    mentions: list[MedicationMention], final: MedicationMention, text: str, terms: Terminology
) -> dict[str, Any]:
    """The output record of one drug from its (reconciled) mentions; `final` carries the final state."""
    main = max(mentions, key=lambda m: (m.dose is not None, m.details, -m.start))
    rxnorm = None
    codings: list[dict[str, str]] = []
    product = next((m.product for m in mentions if m.product is not None), None)
    if product is None:
        ingredient = terms.ingredients[main.rxcui or ""]
        rxnorm = {"system": RXNORM_SYSTEM, "code": ingredient.rxcui, "display": ingredient.name}
    else:
        if product.min_rxcui:
            rxnorm = {"system": RXNORM_SYSTEM, "code": product.min_rxcui, "display": product.name}
        for rxcui in product.ingredients:
            ingredient = terms.ingredients[rxcui]
            codings.append({"system": RXNORM_SYSTEM, "code": rxcui, "display": ingredient.name, "tty": "IN"})
    brand = next((m.brand for m in mentions if m.brand), None)
    return {
        "text": text[main.start : main.end],
        "span": [main.start, main.end],
        "name": main.name,
        "brand": brand,
        "rxnorm": rxnorm,
        "codings": codings,
        "dose": final.dose,
        "route": final.route,
        "frequency": final.frequency,
        "as_needed": final.as_needed,
        "duration": final.duration,
        "status": final.status,
        "mentions": [
            {"span": [m.start, m.end], "text": text[m.start : m.end], "status": m.status} for m in mentions
        ],
    }


def not_taken_record(mention: MedicationMention, text: str, terms: Terminology) -> dict[str, Any]:
    rxnorm = None
    codings: list[dict[str, str]] = []
    if mention.rxcui is not None:
        rxnorm = {
            "system": RXNORM_SYSTEM,
            "code": mention.rxcui,
            "display": terms.ingredients[mention.rxcui].name,
        }
    elif mention.product is not None:
        if mention.product.min_rxcui:
            rxnorm = {
                "system": RXNORM_SYSTEM,
                "code": mention.product.min_rxcui,
                "display": mention.product.name,
            }
        for rxcui in mention.product.ingredients:
            codings.append(
                {
                    "system": RXNORM_SYSTEM,
                    "code": rxcui,
                    "display": terms.ingredients[rxcui].name,
                    "tty": "IN",
                }
            )
    return {
        "text": text[mention.start : mention.end],
        "span": [mention.start, mention.end],
        "name": mention.name,
        "brand": mention.brand,
        "rxnorm": rxnorm,
        "codings": codings,
        "reason": mention.not_taken,
    }


def _dose(sig: str, mention: MedicationMention, terms: Terminology) -> dict[str, Any] | None:
    # "increase to 20 mg", "decrease from 40 to 20 mg": the new dose
    single = mention.product is None
    # "12.5 mg BID -> 25 mg PO BID": the dose after the arrow is the new one
    changed = re.search(r"\bto\s+(?=\d)", sig) or re.search(r"(?:->|\u2192|=>)\s*(?=\d)", sig)
    if changed:
        found = _dose_in(sig[changed.end() :], prefer_mass=single)
        if found is not None:
            return found
    found = _dose_in(sig, prefer_mass=single)
    if found is not None:
        return found
    if mention.product is not None:
        return None  # "Norco 5/325": a strength, not a dose
    # "ASA 81", "lisinopril 20 qd": a bare number right after the name in the drug's usual unit
    bare = re.match(
        r"\s*(?:to\s+)?(\d+(?:\.\d+)?)(?=\s*(?:$|[,;)]|\s+[a-z]))(?!\s*(?:x|times|days?|weeks?|hours?|h\b|yrs?|years?|%|/))",
        sig,
        re.I,
    )
    name = mention.name
    if bare is None or name in NO_BARE_DOSE:
        return None
    unit = UNIT_FOR_BARE_DOSE.get(name) or ("[iU]" if name.startswith("insulin") else "mg")
    value = float(bare.group(1))
    if value <= 0 or value > 5000:
        return None
    return {"value": int(value) if value.is_integer() else value, "unit": unit}


_AUC = re.compile(r"\bAUC\s*(?:of\s*|=\s*)?(\d+(?:\.\d+)?)\b")


def _dose_in(sig: str, prefer_mass: bool = False) -> dict[str, Any] | None:
    """The dose in a sig. `prefer_mass`: a single-ingredient drug's "40 mg ... 1 tab" dose is the 40 mg."""
    auc = _AUC.search(sig)
    if auc:  # carboplatin "AUC 5": a target exposure, not a mass
        value = float(auc.group(1))
        return {"value": int(value) if value.is_integer() else value, "unit": "{AUC}"}
    # "400 mg/5 mL" is a concentration, not a dose
    doses = [
        d
        for d in _DOSE.finditer(sig)
        if not re.match(r"\s*/\s*\d*\s*(?:ml|l|tab|cap)\b", sig[d.end() :], re.I)
        and not sig[: d.start()].rstrip().endswith("/")
    ]
    words = _WORD_COUNT_DOSE.search(sig)
    if not doses:
        if words:
            return {"value": _WORD_NUMBERS[words.group(1).lower()], "unit": _ucum_dose_unit(words.group(2))}
        return None
    # "diclofenac 1% gel 4 g", "lidocaine 2% 10 mL": the percentage is the strength, the other is the dose
    if any(d.group(2) != "%" for d in doses):
        doses = [d for d in doses if d.group(2) != "%"]
    counted = [d for d in doses if d.group(2).lower().startswith(_COUNT_UNITS)]
    if (
        prefer_mass
        and len(counted) < len(doses)
        and all(d.group(2).lower().startswith(("tab", "cap")) for d in counted)
    ):
        counted = []  # a tablet's strength is the dose; a puff's strength is not
    if not counted and words:
        return {"value": _WORD_NUMBERS[words.group(1).lower()], "unit": _ucum_dose_unit(words.group(2))}
    chosen = counted[0] if counted else doses[0]
    # "49-51 mg" is a combination strength, not one dose
    if re.match(r"\d+(?:\.\d+)?\s*-\s*\d", chosen.group(0)):
        return None
    value = float(chosen.group(1).replace(",", ""))
    return {"value": int(value) if value.is_integer() else value, "unit": _ucum_dose_unit(chosen.group(2))}


def _ucum_dose_unit(unit: str) -> str:
    unit = re.sub(r"\s+", "", unit.lower())
    if "/" in unit:  # weight- or body-surface-based: "mg/kg/day" -> "mg/kg/d", "mg/m²" -> "mg/m2"
        parts = unit.split("/")
        first = _ucum_dose_unit(parts[0])
        rest = [p.replace("²", "2").replace("^2", "2") for p in parts[1:]]
        rest = ["d" if p in ("day", "24h") else "h" if p in ("hr", "hour") else p for p in rest]
        return "/".join([first, *rest])
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
        elif code == "q{n}min":
            minutes = int(found.group(1))
            value = {"code": f"q{minutes}min", "frequency": 1, "period": minutes, "period_unit": "min"}
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


# A list's marker at the start of the line ("NEW: ...", "- STOP lisinopril", "CHANGE - ...").
_LINE_MARKER = re.compile(
    r"^\s*(?:[-*\u2022]|\d{1,2}[.)])?\s*\[?(NEW(?:\s+(?:rx|prescriptions?|meds?|medications?))?|START(?:ED)?|CONTINUE[DS]?|STOP(?:PED)?|DISCONTINUE[DS]?|"
    r"CHANGE[DS]?|HOLD|HELD|RESUME[DS]?|INCREASE[DS]?|DECREASE[DS]?)\b\]?\s*[:\-\u2013\u2014]?",
    re.I | re.M,
)
_MARKER_STATUS = {
    "new": "started", "start": "started", "started": "started",
    "continue": "active", "continued": "active", "continues": "active",
    "stop": "stopped", "stopped": "stopped", "discontinue": "stopped", "discontinued": "stopped",
    "discontinues": "stopped",
    "change": "changed", "changed": "changed", "changes": "changed", "increase": "changed",
    "increased": "changed", "increases": "changed", "decrease": "changed", "decreased": "changed",
    "decreases": "changed",
    "hold": "held", "held": "held",
    "resume": "active", "resumed": "active", "resumes": "active",
}  # fmt: skip
# A heading over a list ("STOP taking these medicines:", "Medications to CONTINUE:", "New medications:")
_HEADER_MARKER = re.compile(
    r"\b(new|start(?:ed)?|continue[ds]?|stop(?:ped)?|discontinue[ds]?|change[ds]?|hold|held|resume[ds]?)\b",
    re.I,
)
# a list of past trials ("Med trials:", "Prior meds tried:", "Failed:")
_TRIALS_LABEL = re.compile(
    r"\s*(?:[-*\u2022]\s*)?(?:past|prior|previous|failed|old)?\s*(?:med(?:ication)?s?|drugs?|antidepressants?)?\s*"
    r"(?:trials?|tried|failed)\s*(?:in the past\s*)?:[^.\n]*$",
    re.I,
)
_AFTER_CUE = re.compile(
    r"(?:^|[\s(\[,:\-\u2013\u2014])(?:was |were |is |has been |been |to be |will be )?"
    r"(held|on hold|hold|stopped|stop|discontinued|discontinue|d/c'?d|"
    rf"{_DC}"
    r"|dc'?d|resumed|resume|restarted|"
    r"restart|increased|increase|decreased|decrease|reduced|tapered|taper|changed|started|start|new|"
    r"continued|continue|completed|OFF|weaned|weaning|no longer taking|no longer on)\b"
    r"(?!\s+(?:in|on)\s+\d{4}|\s+\d+\s+(?:years?|months?|yrs?)\s+ago)",
    re.I,
)


def _status(layout: NoteLayout, mention: MedicationMention) -> tuple[str | None, bool]:
    """The status this mention implies: a verb just before the drug name ("start", "stop", "increase ...
    to"), a list marker or heading ("NEW:", "STOP taking:"), or a cue after it ("- held", "was increased",
    "(discontinued)"). The second value says the cue came before the name."""
    text = layout.text
    segment = layout.segment_at(mention.start)
    line_start, line_end = layout.line_bounds(mention.start)
    before = text[max(segment.start, line_start, mention.start - 60, mention.previous_end) : mention.start]
    before = re.split(r"[,;:]\s|\.\s| - |\(", before)[-1]
    after = text[mention.name_end : min(line_end, segment.end + 1, mention.next_start or len(text))]
    after = re.split(r"[;.](?:\s|$)", after)[0]
    # "hold warfarin tonight, then resume": the course ends active; "until the flare resolves, then stop":
    # the planned end of a course, not a stop now
    then = re.search(r"(?:,\s*|\s)(?:and\s+)?(?:then|until|after which)\b", after, re.I)
    if then:
        if re.search(r"\b(?:resum\w*|restart\w*|continu\w*)\b", after[then.end() :], re.I):
            return "active", False
        if re.search(
            r"[-\u2013\u2014,(]\s*(?:course\s+)?(?:completed|complete|finished)\b", after[then.end() :], re.I
        ):
            return "stopped", False  # "colchicine 0.6 mg x2 then 0.6 mg daily x 3 days - completed"
        after = after[: then.start()]
    if re.search(
        r"\b(?:replaces|replacing|in place of|switched from|changed from|swapped (?:in |out )?for)\s+$",
        text[line_start : mention.start],
        re.I,
    ):
        return "stopped", False  # "Augmentin ... (NEW; replaces ceftriaxone)"
    # the cue nearest the name decides ("insulin gtt stopped -> transitioned to glargine": started)
    found_before = [
        (found.end(), status) for pattern, status in _STATUS_PATTERNS for found in pattern.finditer(before)
    ]
    if found_before:
        cue_end, status = max(found_before)
        if re.search(
            r"(?:->|\u2192|=>|\b(?:transitioned|switched|changed|converted)\s+(?:over\s+)?to\b)",
            before[cue_end:],
        ):
            return "started", True
        # "Hold alendronate? -> no, continue": the action proposed was rejected
        rest_of_line = text[mention.name_end : line_end]
        if re.match(r"\s*\?\s*[-\u2013\u2014>:,]*\s*no\b", rest_of_line, re.I):
            return ("active" if re.search(r"\bcontinu", rest_of_line, re.I) else None), False
        # "if a rash appears, stop Lamictal and call us": a return precaution, not a stop now
        if status in ("held", "stopped") and re.match(
            r"\s*(?:[\w/()-]+\s+){0,2}?and\s+(?:call|seek|go to|come|return|contact|notify|page)\b",
            text[mention.name_end : line_end],
            re.I,
        ):
            return None, False
        # "Hold Zestoretic on chemo days if dehydrated": a conditional instruction, not a hold now
        if (
            status in ("held", "stopped")
            and re.search(r"\bif\b(?!\s+(?:needed|necessary|required))", after, re.I)
            and re.search(r"\botherwise\s+(?:continu|resum|take)", text[mention.name_end : line_end], re.I)
        ):
            return "active", False
        return status, True
    marker = _LINE_MARKER.match(text, line_start, mention.start)
    if marker and re.fullmatch(
        r"[\s:\-\u2013\u2014]*(?:taking\s+|these\s+)?", text[marker.end() : mention.start]
    ):
        return _MARKER_STATUS.get(marker.group(1).lower().split()[0]), False
    if (
        marker
        and text[marker.end() - 1] == ":"
        and re.search(r"[;,]\s*(?:and\s+)?$", text[marker.end() : mention.start])
        and not re.search(r"\.\s", text[marker.end() : mention.start])
    ):
        # "Stopped: azithromycin (course complete); Zosyn; insulin lispro": every item of the labelled list
        return _MARKER_STATUS.get(marker.group(1).lower().split()[0]), False
    if _TRIALS_LABEL.match(text, line_start, mention.start):
        return "stopped", False  # "Med trials: fluoxetine (ineffective, 2015), escitalopram (...)"
    if text[line_start:line_end].lstrip().startswith("|"):  # a table row: its note cell ("started", "d/c'd")
        # the first cue in the row decides ("decrease -> ... then stop" is a taper); "not stopping" is no cue
        # the last cell with a cue is the decision ("| prior | today's decision |")
        for cell in reversed(text[mention.name_end : line_end].split("|")):
            cues = [
                (found.start(), status)
                for pattern, status in _STATUS_PATTERNS[:4]
                for found in pattern.finditer(cell)
                if not re.search(r"\b(?:not|no|never|then|until)\s+$", cell[: found.start()], re.I)
            ]
            if cues:
                return min(cues)[1], False
    if re.match(
        r"\s*:?\s*(?:(?:step(?:ped)?|dose) (?:down|up)\s*)?"
        r"\d+(?:\.\d+)?\s*(?:mg|mcg|g|units?)?\s*(?:->|\u2192|=>)\s*\d",
        after,
        re.I,
    ):
        return "changed", False  # "allopurinol 100 -> 200 mg qd", "omeprazole: step down 40 -> 20 mg daily"
    if re.match(r"\s*(?:up-?)?titration\s+(?:was\s+)?completed\b", after, re.I):
        return "active", False  # "Lamictal titration completed to 200 mg/d": at the target dose, still taken
    # "HELD per MD - BP soft, resume tomorrow if SBP >120": a resumption planned ahead is no resumption now
    after = re.split(
        r"\b(?:resum|restart)\w*\s+(?=(?:tomorrow|when|if|once|after|at discharge|in \d)\b)", after
    )[0]
    cues = list(_AFTER_CUE.finditer(after))
    if cues:
        word = cues[-1].group(1).lower().replace("'", "")
        status = _after_status(word)
        if status:
            return status, False
    header = _list_header(layout, line_start)
    if header:
        found = _HEADER_MARKER.search(header)
        if found:
            return _MARKER_STATUS.get(found.group(1).lower()), False
    return None, False


def _after_status(word: str) -> str | None:
    if word in ("held", "on hold", "hold"):
        return "held"
    if word.startswith(("stop", "discontinu", "d/c", "dc", "complet")):
        return "stopped"
    if word.startswith(("resum", "restart", "continu")):
        return "active"
    if word == "off" or word.startswith("no longer"):
        return "stopped"
    if word.startswith(("increas", "decreas", "reduc", "taper", "chang", "wean")):
        return "changed"
    if word in ("started", "start", "new"):
        return "started"
    return None


def _list_header(layout: NoteLayout, line_start: int) -> str | None:
    """The heading line over the list this line belongs to ("STOP taking:"), if the list has one."""
    text = layout.text
    position = line_start
    for _ in range(25):
        if position <= 0:
            return None
        previous_start = text.rfind("\n", 0, position - 1) + 1
        line = text[previous_start : position - 1].strip()
        if not line:
            return None
        if line.endswith(":") and len(line) <= 60:
            return line
        position = previous_start
    return None


def discharge_list(layout: NoteLayout, position: int) -> bool:
    """Is this position in a discharge medication list?"""
    header = _list_header(layout, layout.line_bounds(position)[0])
    heading = header or ""
    if not heading:
        line_start = layout.line_bounds(position)[0]
        heading = layout.text[max(0, line_start - 200) : line_start]
    return bool(re.search(r"discharge\s+(?:med|rx|prescription)", heading, re.I))
