"""Score the structured extraction against an annotated corpus split.

Each note `NN-slug.md` has its annotations in `NN-slug.expected.json` (format in
docs/fhir-and-evaluation.md). The scorer runs the extraction pipeline in-process on every note, builds
the FHIR bundle from the result, and reports per entity type precision/recall/F1, attribute accuracy,
code accuracy, FHIR validity and latency.

Matching rules:
- conditions, medications, allergies: an extracted item matches an expected one when its span overlaps
  an occurrence of the expected `text` (or of one of its `mentions`); a medication may also match on
  the same ingredient name, a condition on the same ICD-10-CM code. Further extracted items that match
  an already matched expected item are repeated mentions: neither true nor false positives.
- vital signs: same kind and same value (weights and temperatures compared after unit conversion).
- labs: same LOINC code (or same normalised name) and same value.
- family history: same relationship and overlapping condition wording.
An expected attribute given as a list means "any of these values". An expected item marked `optional`
is neither a false negative when missed nor a true positive when found.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
BLIND_SPLIT = CORPUS_DIR / "blind"
DEV_SPLIT = CORPUS_DIR / "dev"
V1_SPLIT = CORPUS_DIR / "v1"

# Conditions with these assertions are the patient's own (present, suspected or past).
PATIENT_ASSERTIONS = frozenset({"present", "possible", "historical"})
# A medication record in one of these states is the patient's current medication.
CURRENT_STATUSES = frozenset({"active", "started", "changed"})

# Issue #19's acceptance targets for the blind split (corpus/blind). `make eval-extraction` prints
# which are met; test_evaluation.py enforces FLOORS (below) so that a change cannot make things worse.
TARGETS: dict[str, float] = {
    "conditions.f1": 0.95,
    "conditions.icd10_exact_accuracy": 0.95,
    "conditions.assertion_accuracy": 0.95,
    "medications.f1": 0.95,
    "medications.rxnorm_accuracy": 0.95,
    "medications.dose_accuracy": 0.95,
    "medications.status_accuracy": 0.95,
    "lab_results.recall": 0.95,
    "lab_results.unit_accuracy": 0.95,
    "allergies.precision": 0.90,
    "allergies.recall": 0.90,
    "fhir.validity_rate": 1.0,
    "fhir.us_core_rate": 1.0,
}
# Counts that must be zero on the blind split.
ZERO_TARGETS = ("safety.errors", "medications.duplicates")

# The first test split's thresholds (issue #9), still enforced on corpus/v1. Its bundle validity is not:
# four of its notes state no date, and a vital sign without a time is now an error (US Core).
V1_THRESHOLDS: dict[str, float] = {
    "vital_signs.f1": 0.98,
    "medications.f1": 0.95,
    "medications.dose_accuracy": 0.95,
    "medications.route_accuracy": 0.95,
    "medications.frequency_accuracy": 0.95,
    "medications.rxnorm_accuracy": 0.95,
    "lab_results.f1": 0.95,
    "conditions.f1": 0.90,
    "conditions.icd10_category_accuracy": 0.92,
    "conditions.icd10_exact_accuracy": 0.80,
    "conditions.assertion_accuracy": 0.95,
}

Extractor = Callable[[str], dict[str, Any]]
BundleBuilder = Callable[[dict[str, Any], str], bool]


@dataclass(frozen=True)
class Note:
    name: str
    text: str
    expected: dict[str, Any]


@dataclass
class Counts:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def add(self, other: Counts) -> None:
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass
class Accuracy:
    correct: int = 0
    total: int = 0

    def record(self, ok: bool) -> None:
        self.correct += int(ok)
        self.total += 1

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else 1.0


@dataclass
class EntityScore:
    counts: Counts = field(default_factory=Counts)
    attributes: dict[str, Accuracy] = field(default_factory=dict)

    def attribute(self, name: str) -> Accuracy:
        return self.attributes.setdefault(name, Accuracy())


@dataclass
class Mismatch:
    note: str
    entity: str
    problem: str


@dataclass
class Report:
    split: str
    notes: int
    entities: dict[str, EntityScore]
    safety_errors: list[Mismatch]
    duplicates: dict[str, list[Mismatch]]
    fhir_valid: int
    fhir_invalid: list[Mismatch]
    latencies_ms: list[float]
    first_call_ms: float
    mismatches: list[Mismatch]
    fhir_latencies_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    us_core: int = 0
    us_core_missing: list[Mismatch] = field(default_factory=list)
    encounter_class: Accuracy = field(default_factory=Accuracy)
    safety_items: int = 0

    def metrics(self) -> dict[str, float]:
        """Flat `entity.metric` -> value mapping (the keys of TARGETS plus the rest)."""
        flat: dict[str, float] = {}
        for entity, score in self.entities.items():
            flat[f"{entity}.precision"] = score.counts.precision
            flat[f"{entity}.recall"] = score.counts.recall
            flat[f"{entity}.f1"] = score.counts.f1
            for name, accuracy in score.attributes.items():
                flat[f"{entity}.{name}_accuracy"] = accuracy.value
        flat["fhir.validity_rate"] = self.fhir_valid / self.notes if self.notes else 0.0
        flat["fhir.us_core_rate"] = self.us_core / self.notes if self.notes else 0.0
        flat["encounter.class_accuracy"] = self.encounter_class.value
        flat["safety.errors"] = float(len(self.safety_errors))
        flat["safety.items"] = float(self.safety_items)
        for entity, found in self.duplicates.items():
            flat[f"{entity}.duplicates"] = float(len(found))
        flat["latency.p50_ms"] = percentile(self.latencies_ms, 50)
        flat["latency.p95_ms"] = percentile(self.latencies_ms, 95)
        flat["latency.first_call_ms"] = self.first_call_ms
        flat["latency.cpu_p50_ms"] = percentile(self.cpu_ms, 50)
        flat["latency.cpu_p95_ms"] = percentile(self.cpu_ms, 95)
        flat["latency.fhir_p50_ms"] = percentile(self.fhir_latencies_ms, 50)
        flat["latency.fhir_p95_ms"] = percentile(self.fhir_latencies_ms, 95)
        return flat

    def failures(
        self, minimums: dict[str, float] | None = None, zeros: tuple[str, ...] = ZERO_TARGETS
    ) -> list[str]:
        """Every minimum (the issue's targets by default) this report misses, as readable lines."""
        metrics = self.metrics()
        failed = [
            f"{key} = {metrics.get(key, 0.0):.3f} < {minimum}"
            for key, minimum in (TARGETS if minimums is None else minimums).items()
            if metrics.get(key, 0.0) < minimum - 1e-9
        ]
        failed += [f"{key} = {metrics[key]:.0f} (must be 0)" for key in zeros if metrics.get(key, 0.0) > 0]
        return failed

    def as_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "notes": self.notes,
            "metrics": {key: round(value, 4) for key, value in self.metrics().items()},
            "counts": {
                entity: {
                    "tp": s.counts.true_positives,
                    "fp": s.counts.false_positives,
                    "fn": s.counts.false_negatives,
                }
                for entity, s in self.entities.items()
            },
            "targets_missed": self.failures(),
        }

    def table(self) -> str:
        lines = [
            f"split {self.split}: {self.notes} notes",
            f"{'entity':<16}{'P':>7}{'R':>7}{'F1':>7}{'TP':>6}{'FP':>6}{'FN':>6}  attributes",
        ]
        for entity, score in self.entities.items():
            c = score.counts
            attributes = ", ".join(
                f"{name} {accuracy.value:.3f} ({accuracy.correct}/{accuracy.total})"
                for name, accuracy in score.attributes.items()
            )
            lines.append(
                f"{entity:<16}{c.precision:>7.3f}{c.recall:>7.3f}{c.f1:>7.3f}"
                f"{c.true_positives:>6}{c.false_positives:>6}{c.false_negatives:>6}  {attributes}"
            )
        metrics = self.metrics()
        lines.append(
            f"safety errors (not the patient's, emitted as the patient's): {len(self.safety_errors)} "
            f"of {self.safety_items} annotated safety items"
        )
        lines.append(
            "duplicate records: "
            + ", ".join(f"{entity} {len(found)}" for entity, found in self.duplicates.items())
        )
        lines.append(
            f"encounter class: {self.encounter_class.value:.3f} "
            f"({self.encounter_class.correct}/{self.encounter_class.total})"
        )
        lines.append(
            f"FHIR bundles valid: {self.fhir_valid}/{self.notes}; "
            f"with US Core profiles: {self.us_core}/{self.notes}"
        )
        lines.append(
            f"latency per note: p50 {metrics['latency.p50_ms']:.1f} ms, "
            f"p95 {metrics['latency.p95_ms']:.1f} ms (first call {self.first_call_ms:.1f} ms, not counted); "
            f"CPU time p50 {metrics['latency.cpu_p50_ms']:.1f} ms, p95 {metrics['latency.cpu_p95_ms']:.1f} ms"
        )
        lines.append(
            f"FHIR bundle + validation per note: p50 {metrics['latency.fhir_p50_ms']:.1f} ms, "
            f"p95 {metrics['latency.fhir_p95_ms']:.1f} ms"
        )
        failures = self.failures()
        missed = "all met" if not failures else "MISSED: " + "; ".join(failures)
        lines.append(f"issue #19 targets: {missed}")
        return "\n".join(lines)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def load_split(directory: Path) -> list[Note]:
    notes = []
    for note_path in sorted(directory.glob("*.md")):
        expected_path = note_path.with_suffix(".expected.json")
        if not expected_path.exists():
            raise FileNotFoundError(f"{note_path.name} has no {expected_path.name}")
        notes.append(
            Note(note_path.stem, note_path.read_text(encoding="utf-8"), json.loads(expected_path.read_text()))
        )
    if not notes:
        raise FileNotFoundError(f"no notes in {directory}")
    return notes


# ---- helpers ---------------------------------------------------------------------------------------


def occurrences(text: str, phrase: str) -> list[tuple[int, int]]:
    """Every (start, end) of `phrase` in `text`, case-insensitively."""
    if not phrase:
        return []
    return [(m.start(), m.end()) for m in re.finditer(re.escape(phrase), text, flags=re.IGNORECASE)]


def overlaps(span: Iterable[int] | None, ranges: list[tuple[int, int]]) -> bool:
    if not span:
        return False
    start, end = list(span)[:2]
    return any(start < r_end and r_start < end for r_start, r_end in ranges)


def accepts(expected: Any, actual: Any) -> bool:
    """`expected` may be a list of acceptable values; numbers compare with a small tolerance."""
    options = expected if isinstance(expected, list) else [expected]
    return any(_equal(option, actual) for option in options)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, int | float) and isinstance(actual, int | float) and not isinstance(actual, bool):
        return math.isclose(float(expected), float(actual), rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() <= actual.keys() and all(_equal(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.casefold() == actual.casefold()
    return expected == actual


def options(value: Any) -> list[Any]:
    """An annotation value given as a list means any of them."""
    return value if isinstance(value, list) else [value]


def normalise_name(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (name or "").casefold())


def _code(value: Any) -> str | None:
    """The code of a `{system, code, display}` object (or a bare string)."""
    if isinstance(value, dict):
        return value.get("code")
    return value


# Values compared after conversion to one unit, so that 182 [lb_av] matches 82.55 kg within rounding.
UNIT_FACTORS: dict[str, tuple[str, float, float]] = {
    "[lb_av]": ("kg", 0.45359237, 0.0),
    "kg": ("kg", 1.0, 0.0),
    "g": ("kg", 0.001, 0.0),
    "[in_i]": ("cm", 2.54, 0.0),
    "cm": ("cm", 1.0, 0.0),
    "m": ("cm", 100.0, 0.0),
    "Cel": ("Cel", 1.0, 0.0),
    "[degF]": ("Cel", 5 / 9, -32.0),
    # cell counts: "Plt 188,000" /uL is 188 10*3/uL
    "/uL": ("10*3/uL", 0.001, 0.0),
    "10*3/uL": ("10*3/uL", 1.0, 0.0),
    "10*9/L": ("10*3/uL", 1.0, 0.0),
}
# For a monovalent ion a milliequivalent is a millimole: either unit is right for these LOINC codes
# (sodium, potassium, chloride, bicarbonate, total CO2; not magnesium or calcium).
MONOVALENT_ION_LOINC = frozenset({"2951-2", "2823-3", "2075-0", "1963-8", "2028-9"})
ION_UNITS = frozenset({"meq/L", "mmol/L"})


def _canonical(value: float, unit: str | None) -> tuple[str | None, float]:
    if unit in UNIT_FACTORS:
        base, factor, offset = UNIT_FACTORS[unit]
        return base, (value + offset) * factor
    return unit, value


def same_quantity(expected_value: Any, expected_unit: Any, value: Any, unit: str | None) -> bool:
    """Same number, or the same quantity once converted to one unit (`expected_unit` may be a list)."""
    if not isinstance(value, int | float) or not isinstance(expected_value, int | float):
        return False
    if math.isclose(float(expected_value), float(value), abs_tol=1e-6):
        return True
    base, canonical = _canonical(float(value), unit)
    for option in options(expected_unit):
        expected_base, expected_canonical = _canonical(float(expected_value), option)
        if expected_base == base and math.isclose(expected_canonical, canonical, rel_tol=0.002, abs_tol=0.06):
            return True
    return False


# ---- matching ---------------------------------------------------------------------------------------


def _match(
    expected: list[dict[str, Any]],
    extracted: list[dict[str, Any]],
    primary: Callable[[dict[str, Any], dict[str, Any]], bool],
    secondary: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]], list]:
    """One-to-one matching in two passes; returns (pairs, unmatched expected, unmatched extracted,
    repeats).

    Extracted items that match an already paired expected item are repeats: neither true nor false
    positives, but for records that should be one per concept (medications, conditions) duplicates.
    """
    pairs: dict[int, dict[str, Any]] = {}
    repeated: list[tuple[dict[str, Any], dict[str, Any]]] = []
    rules = [primary] + ([secondary] if secondary else [])
    remaining = list(extracted)
    for rule in rules:
        still: list[dict[str, Any]] = []
        for item in remaining:
            candidates = [i for i, exp in enumerate(expected) if rule(exp, item)]
            free = [i for i in candidates if i not in pairs]
            if free:
                pairs[free[0]] = item
            elif candidates:
                repeated.append((expected[candidates[0]], item))
            else:
                still.append(item)
        remaining = still
    # Optional expected items (mentions annotators could reasonably read either way) are never errors.
    matched = [(expected[i], item) for i, item in sorted(pairs.items()) if not expected[i].get("optional")]
    missed = [exp for i, exp in enumerate(expected) if i not in pairs]
    repeats = [(exp, item) for exp, item in repeated if not exp.get("optional")]
    return matched, missed, remaining, repeats


def _evidence_ranges(text: str, item: dict[str, Any]) -> list[tuple[int, int]]:
    ranges = occurrences(text, item.get("text", ""))
    for mention in item.get("mentions", []):
        ranges += occurrences(text, mention)
    return ranges


def item_spans(item: dict[str, Any]) -> list[list[int]]:
    """An extracted record's evidence: its span and the spans of its merged mentions."""
    spans = [item["span"]] if item.get("span") else []
    for mention in item.get("mentions") or []:
        if isinstance(mention, dict) and mention.get("span"):
            spans.append(mention["span"])
    return spans


def _overlaps_any(item: dict[str, Any], ranges: list[tuple[int, int]]) -> bool:
    return any(overlaps(span, ranges) for span in item_spans(item))


def _ingredient_codes(item: dict[str, Any]) -> set[str]:
    codes = {c.get("code") for c in item.get("codings") or [] if isinstance(c, dict)}
    if not codes and _code(item.get("rxnorm")):
        codes = {_code(item.get("rxnorm"))}
    return {c for c in codes if c}


def rxnorm_correct(expected: dict[str, Any], item: dict[str, Any]) -> bool:
    """The RxCUI the annotator gave (ingredient, or multiple-ingredient concept), or, for a
    combination, the same set of ingredient codes (names where the annotator gave no code)."""
    code = _code(item.get("rxnorm"))
    wanted = [c for c in options(expected.get("rxcui")) if c]
    if code and code in wanted:
        return True
    ingredients = expected.get("ingredients") or []
    if ingredients and all(i.get("rxcui") for i in ingredients):
        return {str(i["rxcui"]) for i in ingredients} == _ingredient_codes(item)
    if ingredients:
        names = {normalise_name(i.get("name")) for i in ingredients}
        got = {normalise_name(n) for n in re.split(r"\s*/\s*", item.get("name") or "")}
        return names == got
    return not wanted and code is None


class Scorer:
    """Accumulates scores over notes; `report()` gives the totals."""

    def __init__(self, split: str) -> None:
        self.split = split
        self.entities: dict[str, EntityScore] = {
            name: EntityScore()
            for name in (
                "conditions",
                "medications",
                "vital_signs",
                "lab_results",
                "allergies",
                "family_history",
            )
        }
        self.safety: list[Mismatch] = []
        self.safety_items = 0
        self.duplicates: dict[str, list[Mismatch]] = {"medications": [], "conditions": []}
        self.encounter_class = Accuracy()
        self.fhir_valid = 0
        self.fhir_invalid: list[Mismatch] = []
        self.us_core = 0
        self.us_core_missing: list[Mismatch] = []
        self.mismatches: list[Mismatch] = []
        self.notes = 0

    def _note_problem(self, note: Note, entity: str, problem: str) -> None:
        self.mismatches.append(Mismatch(note.name, entity, problem))

    def _count(
        self, note: Note, entity: str, matched: list, missed: list, unmatched: list, describe: Callable
    ) -> EntityScore:
        score = self.entities[entity]
        missed = [item for item in missed if not item.get("optional")]
        score.counts.add(Counts(len(matched), len(unmatched), len(missed)))
        for item in missed:
            self._note_problem(note, entity, f"missed {describe(item)}")
        for item in unmatched:
            self._note_problem(note, entity, f"not expected {describe(item)}")
        return score

    def _duplicates(self, note: Note, entity: str, repeats: list, describe: Callable) -> None:
        for expected, item in repeats:
            self.duplicates[entity].append(
                Mismatch(note.name, entity, f"second record {describe(item)} for {expected.get('text')!r}")
            )

    def _attribute(
        self, note: Note, score: EntityScore, entity: str, name: str, expected: Any, actual: Any, label: str
    ) -> None:
        ok = accepts(expected, actual)
        score.attribute(name).record(ok)
        if not ok:
            self._note_problem(note, entity, f"{label}: {name} expected {expected!r}, got {actual!r}")

    def score_note(self, note: Note, result: dict[str, Any]) -> None:
        self.notes += 1
        self._conditions(note, result.get("conditions") or [])
        self._medications(note, result.get("medications") or [])
        self._vitals(note, result.get("vital_signs") or [])
        self._labs(note, result.get("lab_results") or [])
        self._allergies(note, result.get("allergies") or [])
        self._family(note, result.get("family_history") or [])
        self._safety(note, result)
        if "encounter_class" in note.expected:
            got = (result.get("encounter") or {}).get("class")
            ok = accepts(note.expected["encounter_class"], got)
            self.encounter_class.record(ok)
            if not ok:
                self._note_problem(
                    note, "encounter", f"class expected {note.expected['encounter_class']!r}, got {got!r}"
                )

    def record_fhir(self, note: Note, valid: bool, errors: list[str], us_core_missing: list[str]) -> None:
        if valid:
            self.fhir_valid += 1
        else:
            self.fhir_invalid.append(Mismatch(note.name, "fhir", "; ".join(errors[:5])))
        if us_core_missing:
            self.us_core_missing.append(
                Mismatch(note.name, "fhir", "no US Core profile on " + ", ".join(us_core_missing[:5]))
            )
        else:
            self.us_core += 1

    def _conditions(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("conditions", [])
        # Family-history assertions are not the patient's conditions: family_history scores them.
        own = [item for item in extracted if item.get("assertion") != "family"]

        def by_span(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            return _overlaps_any(item, _evidence_ranges(note.text, exp))

        def by_code(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            code = _code(item.get("code"))
            same_assertion = item.get("assertion") in options(exp.get("assertion"))
            return code is not None and accepts(exp.get("icd10"), code) and same_assertion

        matched, missed, unmatched, repeats = _match(expected, own, by_span, by_code)
        score = self._count(note, "conditions", matched, missed, unmatched, lambda c: repr(c.get("text")))
        self._duplicates(
            note,
            "conditions",
            [(e, i) for e, i in repeats if i.get("assertion") in options(e.get("assertion"))],
            lambda c: f"{c.get('text')!r} ({c.get('assertion')})",
        )
        for exp, item in matched:
            label = repr(exp["text"])
            assertion = item.get("assertion")
            self._attribute(note, score, "conditions", "assertion", exp.get("assertion"), assertion, label)
            if exp.get("icd10"):
                code = _code(item.get("code"))
                self._attribute(note, score, "conditions", "icd10_exact", exp["icd10"], code, label)
                categories = [c[:3] for c in options(exp["icd10"])]
                self._attribute(
                    note, score, "conditions", "icd10_category", categories, code[:3] if code else None, label
                )

    def _medications(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("medications", [])

        def by_span(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            return _overlaps_any(item, _evidence_ranges(note.text, exp))

        def by_name(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            names = {normalise_name(name) for name in options(exp.get("name"))}
            return normalise_name(item.get("name")) in names

        matched, missed, unmatched, repeats = _match(expected, extracted, by_span, by_name)
        score = self._count(note, "medications", matched, missed, unmatched, lambda m: repr(m.get("text")))
        self._duplicates(note, "medications", repeats, lambda m: f"{m.get('text')!r} ({m.get('status')})")
        for exp, item in matched:
            label = repr(exp["text"])
            frequency = item.get("frequency")
            frequency_code = frequency.get("code") if isinstance(frequency, dict) else frequency
            checks = {
                "dose": (exp.get("dose"), item.get("dose")),
                "route": (exp.get("route"), item.get("route")),
                "frequency": (exp.get("frequency"), frequency_code),
                "as_needed": (exp.get("as_needed", False), bool(item.get("as_needed"))),
                "status": (exp.get("status", "active"), item.get("status")),
            }
            for name, (want, got) in checks.items():
                self._attribute(note, score, "medications", name, want, got, label)
            ok = rxnorm_correct(exp, item)
            score.attribute("rxnorm").record(ok)
            if not ok:
                self._note_problem(
                    note,
                    "medications",
                    f"{label}: rxnorm expected {exp.get('rxcui')!r} {exp.get('ingredients') or ''}, got "
                    f"{_code(item.get('rxnorm'))!r} {sorted(_ingredient_codes(item))}",
                )

    def _safety(self, note: Note, result: dict[str, Any]) -> None:
        """Every mention that is not the patient's (negated, hypothetical, ruled out, family, another
        person's, a refused order, an allergen...) must not come out as the patient's."""
        items = [
            {"text": mention, "entity": "condition", "kind": "negated_or_family"}
            for mention in note.expected.get("absent_or_family_mentions", [])
        ] + list(note.expected.get("safety", []))
        self.safety_items += len(items)
        for item in items:
            ranges = occurrences(note.text, item["text"])
            if not ranges:
                raise ValueError(f"{note.name}: safety text {item['text']!r} is not in the note")
            if item["entity"] == "condition":
                wrong = [
                    c
                    for c in result.get("conditions") or []
                    if c.get("assertion") in PATIENT_ASSERTIONS and _overlaps_any(c, ranges)
                ]
                describe = lambda c: f"condition {c.get('text')!r} ({c.get('assertion')})"  # noqa: E731
            elif item["entity"] == "medication":
                wrong = [
                    m
                    for m in result.get("medications") or []
                    if m.get("status") in CURRENT_STATUSES and _overlaps_any(m, ranges)
                ]
                describe = lambda m: f"medication {m.get('text')!r} ({m.get('status')})"  # noqa: E731
            else:
                wrong = [a for a in result.get("allergies") or [] if _overlaps_any(a, ranges)]
                describe = lambda a: f"allergy {a.get('text')!r}"  # noqa: E731
            for found in wrong:
                self.safety.append(
                    Mismatch(note.name, "safety", f"{describe(found)} from {item['text']!r} ({item['kind']})")
                )

    def _vitals(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("vital_signs", [])

        def same(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            if exp["kind"] != item.get("kind"):
                return False
            if exp["kind"] == "blood_pressure":
                return accepts(exp["systolic"], item.get("systolic")) and accepts(
                    exp["diastolic"], item.get("diastolic")
                )
            return same_quantity(exp["value"], exp.get("unit"), item.get("value"), item.get("unit"))

        matched, missed, unmatched, _ = _match(expected, extracted, same)
        score = self._count(
            note,
            "vital_signs",
            matched,
            missed,
            unmatched,
            lambda v: f"{v.get('kind')} {v.get('value', '')}{v.get('systolic', '')}",
        )
        for exp, item in matched:
            if exp["kind"] != "blood_pressure" and exp.get("unit"):
                unit = item.get("unit")
                self._attribute(note, score, "vital_signs", "unit", exp["unit"], unit, exp["kind"])

    def _labs(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("lab_results", [])

        def same(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            same_test = (exp.get("loinc") and accepts(exp["loinc"], item.get("loinc"))) or (
                normalise_name(exp.get("name")) == normalise_name(item.get("name"))
            )
            value, unit = item.get("value"), item.get("unit")
            return bool(same_test) and same_quantity(exp["value"], exp.get("unit"), value, unit)

        matched, missed, unmatched, _ = _match(expected, extracted, same)
        score = self._count(
            note, "lab_results", matched, missed, unmatched, lambda lab: f"{lab['name']} {lab['value']}"
        )
        for exp, item in matched:
            label = exp["name"]
            self._attribute(note, score, "lab_results", "loinc", exp.get("loinc"), item.get("loinc"), label)
            unit, want = item.get("unit"), options(exp.get("unit"))
            if item.get("loinc") in MONOVALENT_ION_LOINC and ION_UNITS & set(want):
                want = [*want, *ION_UNITS]
            self._attribute(note, score, "lab_results", "unit", want, unit, label)
            if "flag" in exp:
                self._attribute(note, score, "lab_results", "flag", exp["flag"], item.get("flag"), label)

    def _allergies(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("allergies", [])

        def by_span(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            return _overlaps_any(item, _evidence_ranges(note.text, exp))

        matched, missed, unmatched, _ = _match(expected, extracted, by_span)
        score = self._count(note, "allergies", matched, missed, unmatched, lambda a: repr(a.get("text")))
        for exp, item in matched:
            if exp.get("reaction"):
                ok = normalise_name(exp["reaction"]) in normalise_name(str(item.get("reaction") or ""))
                score.attribute("reaction").record(ok)
            if exp.get("verification"):
                label = repr(exp["text"])
                got = item.get("verification", "confirmed")
                self._attribute(note, score, "allergies", "verification", exp["verification"], got, label)

    def _family(self, note: Note, extracted: list[dict[str, Any]]) -> None:
        expected = note.expected.get("family_history", [])

        def same(exp: dict[str, Any], item: dict[str, Any]) -> bool:
            relationships = {normalise_name(r) for r in options(exp["relationship"])}
            if normalise_name(item.get("relationship")) not in relationships:
                return False
            want = normalise_name(exp["condition"])
            got = normalise_name(item.get("condition") or item.get("text"))
            return bool(want and got) and (want in got or got in want)

        matched, missed, unmatched, _ = _match(expected, extracted, same)
        self._count(
            note,
            "family_history",
            matched,
            missed,
            unmatched,
            lambda f: f"{f.get('relationship')}: {f.get('condition')}",
        )

    def report(
        self,
        latencies_ms: list[float],
        first_call_ms: float,
        fhir_latencies_ms: list[float],
        cpu_ms: list[float],
    ) -> Report:
        return Report(
            split=self.split,
            notes=self.notes,
            entities=self.entities,
            safety_errors=self.safety,
            duplicates=self.duplicates,
            fhir_valid=self.fhir_valid,
            fhir_invalid=self.fhir_invalid,
            latencies_ms=latencies_ms,
            first_call_ms=first_call_ms,
            mismatches=self.mismatches,
            fhir_latencies_ms=fhir_latencies_ms,
            cpu_ms=cpu_ms,
            us_core=self.us_core,
            us_core_missing=self.us_core_missing,
            encounter_class=self.encounter_class,
            safety_items=self.safety_items,
        )


# ---- running ----------------------------------------------------------------------------------------


def default_extractor() -> Extractor:
    from medical_notes.extraction import extract_structured

    return extract_structured


# Resource types US Core (STU 6.1) profiles; a bundle counts when each of them declares one.
US_CORE_TYPES = frozenset(
    {
        "Patient", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance", "Observation",
        "Procedure", "DocumentReference", "Provenance", "ServiceRequest", "CarePlan",
    }
)  # fmt: skip
US_CORE_PREFIX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"


def fhir_validity(extraction: dict[str, Any], text: str) -> tuple[bool, list[str], list[str]]:
    """(valid R4, errors, resource types that lack a US Core profile) for the note's bundle."""
    from medical_notes.fhir import build_bundle

    result = build_bundle(extraction, source_text=text)
    missing = sorted(
        {
            resource["resourceType"]
            for entry in result.bundle.get("entry", [])
            if (resource := entry.get("resource", {})).get("resourceType") in US_CORE_TYPES
            and not any(
                str(profile).startswith(US_CORE_PREFIX)
                for profile in (resource.get("meta") or {}).get("profile", [])
            )
        }
    )
    return result.validation.valid, [str(error) for error in result.validation.errors], missing


def evaluate(
    directory: Path = BLIND_SPLIT,
    extractor: Extractor | None = None,
    *,
    check_fhir: bool = True,
) -> Report:
    """Run `extractor` (the pipeline by default) over the split in `directory` and score it."""
    notes = load_split(directory)
    extract = extractor or default_extractor()
    scorer = Scorer(directory.name)

    started = time.perf_counter()
    extract(notes[0].text)
    first_call_ms = (time.perf_counter() - started) * 1000

    latencies: list[float] = []
    fhir_latencies: list[float] = []
    cpu: list[float] = []
    for note in notes:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = extract(note.text)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        scorer.score_note(note, result)
        if check_fhir:
            result = dict(result)
            result.setdefault("source_sha256", hashlib.sha256(note.text.encode()).hexdigest())
            started = time.perf_counter()
            valid, errors, missing = fhir_validity(result, note.text)
            fhir_latencies.append((time.perf_counter() - started) * 1000)
            scorer.record_fhir(note, valid, errors, missing)
    return scorer.report(latencies, first_call_ms, fhir_latencies, cpu)
