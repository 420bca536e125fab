"""Plain-text analysis of clinical notes for the offline provider: SOAP sections, sentences, ranking.

Everything here is deterministic and dependency-free so that it runs in well under a millisecond
for a typical note.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SUBJECTIVE = "Subjective"
OBJECTIVE = "Objective"
ASSESSMENT = "Assessment"
PLAN = "Plan"
MEDICATIONS = "Medications"
UNLABELLED = "Note"

# Labels that start a section, written lower-case; "chief complaint" style labels stay in Subjective
# but also mark their line as the chief complaint.
_SECTION_LABELS: dict[str, str] = {
    "subjective": SUBJECTIVE,
    "s": SUBJECTIVE,
    "history": SUBJECTIVE,
    "hpi": SUBJECTIVE,
    "history of present illness": SUBJECTIVE,
    "interval history": SUBJECTIVE,
    "objective": OBJECTIVE,
    "o": OBJECTIVE,
    "exam": OBJECTIVE,
    "examination": OBJECTIVE,
    "physical exam": OBJECTIVE,
    "physical examination": OBJECTIVE,
    "findings": OBJECTIVE,
    "assessment": ASSESSMENT,
    "a": ASSESSMENT,
    "impression": ASSESSMENT,
    "diagnosis": ASSESSMENT,
    "diagnoses": ASSESSMENT,
    "assessment and plan": ASSESSMENT,
    "assessment & plan": ASSESSMENT,
    "assessment/plan": ASSESSMENT,
    "a/p": ASSESSMENT,
    "a&p": ASSESSMENT,
    "plan": PLAN,
    "p": PLAN,
    "treatment plan": PLAN,
    "recommendations": PLAN,
    "medications": MEDICATIONS,
    "medication": MEDICATIONS,
    "meds": MEDICATIONS,
    "current medications": MEDICATIONS,
    "medication list": MEDICATIONS,
    "medication changes": MEDICATIONS,
    "prescriptions": MEDICATIONS,
}
_CHIEF_COMPLAINT_LABELS = {"chief complaint", "cc", "reason for visit", "presenting complaint"}
_SINGLE_LETTER_LABELS = {"s", "o", "a", "p"}

_HEADING_MARK = re.compile(r"^\s{0,3}#{1,6}\s*")
_EMPHASIS = re.compile(r"\*\*|__")
_LABEL_LINE = re.compile(r"^([A-Za-z][A-Za-z /&-]{0,40}?)\s*:\s*(.*)$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022+]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*(?:\n|\Z)", re.DOTALL)
_TOKEN = re.compile(r"[a-z0-9]+")
DOSE = re.compile(
    r"\b\d+(?:[.,]\d+)?(?:/\d+(?:[.,]\d+)?)*\s?(?:mg|mcg|\u00b5g|micrograms?|g|units?|iu|ml)\b",
    re.IGNORECASE,
)
_ACTION_START = re.compile(
    r"^(?:start|started|continue|increase|increased|reduce|decrease|stop|stopped|switch|add|refer|"
    r"repeat|recheck|review|check|follow|return|schedule|order|advise|advised|counsel|counselled|"
    r"arrange|book|plan|discuss|begin|titrate|hold|avoid|keep|monitor)\b",
    re.IGNORECASE,
)

# A word list reads better as one string than as a hundred quoted items
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being below both but
    by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its me more most my no nor not of off on once only or
    other our out over own same she should so some such than that the their them then there these
    they this those through to too under until up was we were what when where which while who
    whom why will with would you your patient patients pt note notes please tell show give list
    describe explain summary summarise summarize given take takes taking""".split()  # noqa: SIM905
)


def _spelling(token: str) -> str:
    """Fold British spellings of clinical words onto one form (haemoglobin/hemoglobin, oedema/edema)."""
    if "aem" in token:
        token = token.replace("aem", "em")
    if token.startswith("oe") and len(token) > 4:
        token = "e" + token[2:]
    if token.endswith("noea"):
        token = token[:-4] + "nea"
    if "paed" in token:
        token = token.replace("paed", "ped")
    return token


def _stem(token: str) -> str:
    """A deliberately light suffix stripper, enough to match the usual word forms of clinical text."""
    if token.isdigit() or len(token) <= 3:
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    for suffix in ("ation", "ated", "ment", "ant"):
        # anticoagulation / anticoagulated / anticoagulant -> anticoagul; treatment -> treat
        if token.endswith(suffix) and len(token) >= 8:
            token = token[: -len(suffix)]
            break
    else:
        if (token.endswith("ing") and len(token) > 5) or (token.endswith("ed") and len(token) > 4):
            token = token[:-3] if token.endswith("ing") else token[:-2]
            if token[-1] == token[-2] and token[-1] not in "lsz":
                token = token[:-1]  # stopped -> stop, not stopp
    if token.endswith("e") and len(token) > 3:
        token = token[:-1]
    return token


def normalise(token: str) -> str:
    return _stem(_spelling(token))


def _words(text: str) -> list[str]:
    return [normalise(token) for token in _TOKEN.findall(text.lower()) if token not in _STOPWORDS]


# Spelled-out forms are rewritten to their abbreviation, so that "blood pressure" and "BP" are the
# same single term for ranking
_EQUIVALENTS = {
    "blood pressure": "bp",
    "heart rate": "hr",
    "pulse rate": "hr",
    "a1c": "hba1c",
    "glycated hemoglobin": "hba1c",
    "oxygen saturation": "spo2",
    "shortness of breath": "sob",
    "body mass index": "bmi",
    "temperature": "temp",
    "chronic kidney disease": "ckd",
    "kidney function": "egfr",
    "renal function": "egfr",
    "chronic obstructive pulmonary disease": "copd",
    "heart failure": "hf",
    "atrial fibrillation": "af",
    "myocardial infarction": "mi",
    "heart attack": "mi",
    "ejection fraction": "lvef",
    "ldl cholesterol": "ldl",
}
_PHRASES_BY_FIRST_WORD: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _phrase, _short in sorted(_EQUIVALENTS.items(), key=lambda item: -len(item[0].split())):
    _phrase_words = tuple(_words(_phrase))
    _PHRASES_BY_FIRST_WORD.setdefault(_phrase_words[0], []).append((_phrase_words, _words(_short)[0]))


def tokenize(text: str) -> list[str]:
    """Lower-case content words in normalised form, stop words removed, phrases abbreviated."""
    words = _words(text)
    tokens: list[str] = []
    index = 0
    while index < len(words):
        for phrase, short in _PHRASES_BY_FIRST_WORD.get(words[index], ()):
            if tuple(words[index : index + len(phrase)]) == phrase:
                tokens.append(short)
                index += len(phrase)
                break
        else:
            tokens.append(words[index])
            index += 1
    return tokens


_SYNONYM_GROUPS = [
    "bp, blood pressure, hypertension, hypertensive, antihypertensive",
    "hba1c, a1c, glycated, glucose, sugar, glycemic, diabetes, diabetic",
    "kidney, renal, egfr, creatinine, ckd, nephropathy, albuminuria, acr",
    "cholesterol, ldl, hdl, lipid, statin, triglycerides, hyperlipidemia",
    "medication, meds, drug, medicine, prescription, prescribed, dose, dosage, mg, tablet, treatment",
    "heart rate, pulse, hr, bpm, tachycardia",
    "breathless, breathlessness, dyspnea, sob, shortness of breath",
    "oxygen, spo2, saturation, sats",
    "temperature, fever, febrile, temp, pyrexia",
    "weight, bmi, obesity, obese, kg",
    "pain, ache, sore, soreness, tenderness, analgesia, painkiller",
    "follow up, review, return, revisit, appointment, recheck",
    "wound, incision, port, infection, redness",
    "asthma, wheeze, wheezing, inhaler",
    "smoking, smoker, cigarettes, tobacco, pack years",
    "alcohol, drinking, drinks",
    "allergy, allergic, pollen",
    "anticoagulation, anticoagulant, apixaban, warfarin, rivaroxaban",
    "vitals, vital signs, bp, hr, spo2, temperature",
    "swelling, edema",
    "anemia, hemoglobin",
    "heart failure, hfref, ejection fraction, lvef",
    "copd, emphysema, bronchitis, exacerbation",
    "antibiotic, antibiotics, amoxicillin, doxycycline, clarithromycin, azithromycin, co-amoxiclav, "
    "flucloxacillin, cefalexin, nitrofurantoin",
    "statin, atorvastatin, rosuvastatin, simvastatin, pravastatin",
    "ace inhibitor, lisinopril, ramipril, enalapril, perindopril",
    "arb, losartan, candesartan, valsartan, irbesartan",
    "beta blocker, bisoprolol, atenolol, metoprolol, carvedilol",
    "diuretic, furosemide, bumetanide, indapamide, spironolactone, bendroflumethiazide",
    "sglt2, empagliflozin, dapagliflozin, canagliflozin",
    "steroid, corticosteroid, prednisolone, budesonide, beclometasone, fluticasone, hydrocortisone",
    "inhaler, salbutamol, tiotropium, formoterol, umeclidinium, vilanterol",
    "painkiller, analgesic, analgesia, paracetamol, ibuprofen, naproxen, codeine",
    "nsaid, ibuprofen, naproxen, diclofenac",
    "antihistamine, cetirizine, loratadine",
    "blood thinner, apixaban, warfarin, rivaroxaban, edoxaban, dabigatran",
]


def _build_synonyms(groups: Iterable[str]) -> dict[str, frozenset[str]]:
    related: dict[str, set[str]] = {}
    for group in groups:
        tokens = {token for phrase in group.split(",") for token in tokenize(phrase)}
        for token in tokens:
            related.setdefault(token, set()).update(tokens - {token})
    return {token: frozenset(others) for token, others in related.items()}


_SYNONYMS = _build_synonyms(_SYNONYM_GROUPS)
_SYNONYM_WEIGHT = 0.5


def query_terms(query: str) -> dict[str, float]:
    """Query tokens with weight 1, plus related clinical terms with a lower weight."""
    terms = dict.fromkeys(tokenize(query), 1.0)
    for token in list(terms):
        for related in _SYNONYMS.get(token, ()):
            terms.setdefault(related, _SYNONYM_WEIGHT)
    return terms


@dataclass
class Unit:
    """One sentence or list item of a document, with the section it belongs to."""

    section: str
    text: str
    position: int
    tokens: list[str] = field(default_factory=list)


@dataclass
class ParsedNote:
    units: list[Unit]
    chief_complaint: str | None
    structured: bool  # at least one SOAP section label was recognised

    def section(self, name: str) -> list[Unit]:
        return [unit for unit in self.units if unit.section == name]


def strip_front_matter(text: str) -> str:
    return _FRONT_MATTER.sub("", text, count=1)


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WRAPPED_LINE_LENGTH = 60


def logical_lines(text: str) -> list[str]:
    """Lines with hard-wrapped continuations joined back, so that a wrapped sentence stays whole.

    A line continues the previous one when the previous one does not end a sentence and either
    looks wrapped (long) or the line starts in lower case; bullets, headings and labels never continue.
    """
    lines: list[str] = []
    previous_blank = True
    for raw_line in _HTML_COMMENT.sub("", text).splitlines():
        line = raw_line.strip()
        if not line:
            previous_blank = True
            continue
        starts_block = bool(_BULLET.match(line) or _HEADING_MARK.match(line) or _section_label(line))
        if lines and not previous_blank and not starts_block:
            last = lines[-1]
            if not last.endswith((".", "!", "?", ":")) and (
                len(last) >= _WRAPPED_LINE_LENGTH or line[0].islower()
            ):
                lines[-1] = f"{last} {line}"
                continue
        lines.append(line)
        previous_blank = False
    return lines


def _section_label(line: str) -> tuple[str, str, bool] | None:
    """Recognise a section label line; returns (label, rest of line, was a markdown heading)."""
    heading = bool(_HEADING_MARK.match(line))
    text = _EMPHASIS.sub("", _HEADING_MARK.sub("", line)).strip()
    lowered = text.lower().rstrip(":").strip()
    known = lowered in _SECTION_LABELS or lowered in _CHIEF_COMPLAINT_LABELS
    bare_line = lowered == text.lower()  # e.g. "SUBJECTIVE" or "Assessment" alone on its line
    if known and (heading or (bare_line and lowered not in _SINGLE_LETTER_LABELS)):
        return lowered, "", heading
    match = _LABEL_LINE.match(text)
    if match:
        label = match.group(1).strip().lower()
        if label in _SECTION_LABELS or label in _CHIEF_COMPLAINT_LABELS:
            return label, match.group(2).strip(), heading
    if heading:
        return lowered, "", True
    return None


def parse_note(text: str) -> ParsedNote:
    """Split a note into sentences and list items, each tagged with its SOAP section."""
    units: list[Unit] = []
    chief_complaint: str | None = None
    section = UNLABELLED
    structured = False

    def add(section_name: str, fragment: str) -> None:
        for sentence in split_sentences(fragment):
            if any(char.isalnum() for char in sentence):
                units.append(Unit(section_name, sentence, len(units), tokenize(sentence)))

    for line in logical_lines(strip_front_matter(text)):
        label = _section_label(line)
        if label is not None:
            name, rest, heading = label
            if name in _CHIEF_COMPLAINT_LABELS:
                if section == UNLABELLED:
                    section = SUBJECTIVE
                if rest and chief_complaint is None:
                    chief_complaint = split_sentences(rest)[0]
                    structured = True
                if rest:
                    add(section, rest)
                continue
            if name in _SECTION_LABELS:
                section = _SECTION_LABELS[name]
                structured = True
                if rest:
                    if section == MEDICATIONS:
                        for item in re.split(r"[;,](?=\s*[A-Za-z])", rest):
                            add(section, item)
                    else:
                        add(section, rest)
                continue
            if heading:
                # An unknown markdown heading (e.g. "## Social history") is not content itself
                continue
        bullet = _BULLET.match(line)
        if bullet:
            line = line[bullet.end() :]
        add(section, _EMPHASIS.sub("", line))
    return ParsedNote(units=units, chief_complaint=chief_complaint, structured=structured)


# Words in a question that ask for a whole section of the note ("what is the plan?")
_SECTION_WORDS = {
    SUBJECTIVE: "subjective history symptoms complaint complaints",
    OBJECTIVE: "objective examination exam findings",
    ASSESSMENT: "assessment diagnosis diagnoses impression problems",
    PLAN: "plan plans management next steps",
    MEDICATIONS: "medications medication meds drugs medicines prescriptions prescribed",
}
_SECTION_TOKENS = {section: set(tokenize(words)) for section, words in _SECTION_WORDS.items()}


def sections_asked_for(query_tokens: Iterable[str]) -> list[str]:
    tokens = set(query_tokens)
    return [section for section, words in _SECTION_TOKENS.items() if tokens & words]


def section_vocabulary() -> set[str]:
    return {token for words in _SECTION_TOKENS.values() for token in words}


def is_action(sentence: str) -> bool:
    return bool(_ACTION_START.match(sentence))


def has_dose(sentence: str) -> bool:
    return bool(DOSE.search(sentence))


class BM25:
    """Okapi BM25 over a small set of units, with weighted query terms."""

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self._frequencies = [Counter(tokens) for tokens in documents]
        self._lengths = [len(tokens) for tokens in documents]
        self._average_length = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        count = len(documents)
        document_frequency: Counter[str] = Counter()
        for frequencies in self._frequencies:
            document_frequency.update(frequencies.keys())
        self._idf = {
            term: math.log(1.0 + (count - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()
        }
        self._k1 = k1
        self._b = b

    def contains(self, term: str) -> bool:
        return term in self._idf

    def scores(self, terms: dict[str, float]) -> list[float]:
        results = []
        average = self._average_length or 1.0
        for frequencies, length in zip(self._frequencies, self._lengths, strict=True):
            score = 0.0
            norm = self._k1 * (1.0 - self._b + self._b * length / average)
            for term, weight in terms.items():
                tf = frequencies.get(term)
                if tf:
                    score += weight * self._idf[term] * tf * (self._k1 + 1.0) / (tf + norm)
            results.append(score)
        return results


def centrality_scores(units: Sequence[Unit]) -> list[float]:
    """How much of the note's recurring vocabulary a unit carries; used when a note has no structure."""
    document_frequency: Counter[str] = Counter()
    for unit in units:
        document_frequency.update(set(unit.tokens))
    scores = []
    for unit in units:
        distinct = set(unit.tokens)
        if not distinct:
            scores.append(0.0)
            continue
        recurring = sum(math.log1p(document_frequency[token]) for token in distinct)
        score = recurring / math.sqrt(len(distinct))
        if has_dose(unit.text) or any(char.isdigit() for char in unit.text):
            score *= 1.2
        scores.append(score)
    if scores:
        scores[0] *= 1.3  # the opening sentence usually states why the patient came
    return scores
