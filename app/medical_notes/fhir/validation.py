"""Offline validation of our bundles: FHIR R4 structure, then our own rules.

Structure: the `fhir.resources` R4B models (pydantic). R4B changed no element of the resources we emit
(it added new resources and fixed R4's medication-definition ones), so a bundle valid against them is a
valid R4 structure: cardinalities, data types, required elements and no unknown elements.
Our rules: every reference resolves inside the bundle; every ICD-10-CM, RxNorm and LOINC code exists in
the service's terminology tables; quantities are UCUM; vital-sign Observations carry what FHIR's
vital-signs profile requires, an effective time included (a note that states no date gets an error);
and the US Core (STU 6.1.0) rules of `_us_core_errors` for every resource that declares a US Core profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from medical_notes.fhir import vocabulary as v

Lookup = Callable[[str], Any]


def _walk(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object inside `value`, with its path."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")


def _structure_errors(bundle: dict[str, Any]) -> list[str]:
    try:
        Bundle.model_validate(bundle)
    except ValidationError as error:
        return [
            "FHIR R4 structure: " + ".".join(str(part) for part in problem["loc"]) + f": {problem['msg']}"
            for problem in error.errors()
        ]
    return []


def _terminology() -> tuple[dict[str, Lookup], Callable[[str], bool]] | None:
    try:
        from medical_notes.extraction import terminology
    except ImportError:
        return None
    lookups = {
        v.ICD10CM: terminology.icd10_lookup,
        v.RXNORM: terminology.rxnorm_lookup,
        v.LOINC: terminology.loinc_lookup,
    }
    return lookups, terminology.is_ucum_unit


# The vital-signs profile codes are fixed by FHIR; they are valid whatever the LOINC table holds.
_PROFILE_LOINC = (
    {code for code, _ in v.VITAL_SIGNS.values()}
    | {
        v.PULSE_OXIMETRY[0],
        v.SYSTOLIC[0],
        v.DIASTOLIC[0],
    }
    | {code for code, _ in v.DOCUMENT_TYPES.values()}
)


# FHIR's units-of-time value set (Timing, durations): UCUM codes whatever the unit table holds.
_UNITS_OF_TIME = frozenset(v.PERIOD_UNITS.values())


def _reference_errors(bundle: dict[str, Any]) -> list[str]:
    full_urls = {entry.get("fullUrl") for entry in bundle.get("entry", [])}
    return [
        f"{path}: reference {node['reference']!r} does not resolve inside the bundle"
        for path, node in _walk(bundle.get("entry", []), "Bundle.entry")
        if isinstance(node.get("reference"), str) and node["reference"] not in full_urls
    ]


def _code_errors(bundle: dict[str, Any]) -> tuple[list[str], list[str]]:
    terminology = _terminology()
    if terminology is None:
        return [], ["terminology tables unavailable: codes and units not checked against them"]
    lookups, is_ucum_unit = terminology
    errors = []
    for path, node in _walk(bundle.get("entry", []), "Bundle.entry"):
        system, code = node.get("system"), node.get("code")
        if not isinstance(code, str):
            continue
        if system in lookups and not (system == v.LOINC and code in _PROFILE_LOINC):
            if lookups[system](code) is None:
                errors.append(f"{path}: {system} code {code!r} is not in our terminology table")
        elif system == v.UCUM and code not in _UNITS_OF_TIME and not is_ucum_unit(code):
            errors.append(f"{path}: {code!r} is not a UCUM unit we know")
    return errors, []


def _quantity_errors(path: str, quantity: Any, allowed: frozenset[str] | None) -> list[str]:
    if not isinstance(quantity, dict):
        return [f"{path}: vital sign without a valueQuantity"]
    problems = []
    if not isinstance(quantity.get("value"), int | float):
        problems.append(f"{path}: no numeric value")
    if quantity.get("system") != v.UCUM or not quantity.get("code") or not quantity.get("unit"):
        problems.append(f"{path}: the unit must be UCUM (system, code and unit)")
    elif allowed is not None and quantity["code"] not in allowed:
        problems.append(f"{path}: unit {quantity['code']!r} is not one the vital-signs profile allows")
    return problems


def _vital_sign_errors(bundle: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    units_by_code = {code: v.VITAL_UNITS[kind] for kind, (code, _) in v.VITAL_SIGNS.items()}
    for index, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        categories = [
            c.get("code") for concept in resource.get("category", []) for c in concept.get("coding", [])
        ]
        if resource.get("resourceType") != "Observation" or "vital-signs" not in categories:
            continue
        path = f"Bundle.entry[{index}].resource"
        codes = [
            c.get("code") for c in resource.get("code", {}).get("coding", []) if c.get("system") == v.LOINC
        ]
        profile_codes = [code for code in codes if code in units_by_code]
        if not profile_codes:
            errors.append(f"{path}: vital sign without a vital-signs profile LOINC code")
            continue
        if "subject" not in resource:
            errors.append(f"{path}: vital sign without a subject")
        if profile_codes[0] == v.VITAL_SIGNS["blood_pressure"][0]:
            components = {
                c.get("code"): component.get("valueQuantity")
                for component in resource.get("component", [])
                for c in component.get("code", {}).get("coding", [])
            }
            for part, _ in (v.SYSTOLIC, v.DIASTOLIC):
                if part not in components:
                    errors.append(f"{path}: blood pressure panel without its {part} component")
                else:
                    errors += _quantity_errors(
                        f"{path}.component {part}", components[part], frozenset({"mm[Hg]"})
                    )
        else:
            errors += _quantity_errors(
                f"{path}.valueQuantity", resource.get("valueQuantity"), units_by_code[profile_codes[0]]
            )
    return errors


# US Core (STU 6.1.0) elements each profile makes mandatory (1..*), by resource type; "|" means one of.
_US_CORE_REQUIRED: dict[str, tuple[str, ...]] = {
    "Patient": ("identifier", "name", "gender"),
    "Encounter": ("status", "class", "type", "subject"),
    "Condition": ("category", "code", "subject", "clinicalStatus", "verificationStatus"),
    "MedicationRequest": ("status", "intent", "medicationCodeableConcept|medicationReference", "subject"),
    "AllergyIntolerance": ("clinicalStatus", "verificationStatus", "code", "patient"),
    "Observation": ("status", "category", "code", "subject", "effectiveDateTime|effectivePeriod"),
    "Procedure": ("status", "code", "subject", "performedString|performedDateTime|performedPeriod"),
    "DocumentReference": ("status", "type", "category", "subject", "content"),
    "Provenance": ("target", "recorded", "agent"),
    "ServiceRequest": ("status", "intent", "code", "subject"),
    "CarePlan": ("text", "status", "intent", "category", "subject"),
}


def _us_core_errors(bundle: dict[str, Any]) -> list[str]:
    """Mandatory elements of the US Core profile a resource declares, and units on its quantities."""
    errors = []
    for index, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        profiles = (resource.get("meta") or {}).get("profile", [])
        if not any(str(profile).startswith(v.US_CORE) for profile in profiles):
            continue
        path = f"Bundle.entry[{index}].resource"
        for element in _US_CORE_REQUIRED.get(resource.get("resourceType"), ()):
            if not any(resource.get(name) for name in element.split("|")):
                why = " (the note states no date)" if element.startswith("effective") else ""
                errors.append(f"{path}: US Core requires {element.replace('|', ' or ')}{why}")
        names = resource.get("name", []) if resource.get("resourceType") == "Patient" else [{"family": 1}]
        if not any(name.get("family") or name.get("given") or name.get("extension") for name in names):
            errors.append(f"{path}: US Core (us-core-6) requires a name or a data-absent-reason")
    return errors


def validate_bundle(bundle: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) for `bundle`; no errors means it is valid."""
    errors = _structure_errors(bundle)
    errors += _reference_errors(bundle)
    errors += _us_core_errors(bundle)
    code_errors, warnings = _code_errors(bundle)
    vital_errors = _vital_sign_errors(bundle)
    return errors + code_errors + vital_errors, warnings
