"""One FHIR R4 resource (as a JSON dict) per extracted item.

Every builder takes a `Context` (the references to the Patient, Encounter and DocumentReference of the
bundle, and the encounter date) and the item from the extraction, and returns the resource, or None
when the item is not something the patient's record should hold (a negated condition, for example).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from medical_notes.fhir import vocabulary as v

Resource = dict[str, Any]


@dataclass(frozen=True)
class Context:
    patient: str
    encounter: str
    document: str
    date: str | None
    note_type: str | None = None
    encounter_class: str = "AMB"


def reference(url: str) -> dict[str, str]:
    return {"reference": url}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(text: str | None, *codings: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if codings:
        result["coding"] = list(codings)
    if text:
        result["text"] = text
    return result


def span_extension(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Where in the note the item came from: [start, end) character offsets."""
    span = item.get("span")
    if not span or len(span) != 2:
        return []
    return [
        {
            "url": v.SOURCE_SPAN_EXTENSION,
            "extension": [
                {"url": "start", "valueInteger": int(span[0])},
                {"url": "end", "valueInteger": int(span[1])},
            ],
        }
    ]


def quantity(value: float | int, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": v.UCUM, "code": unit}


def us_core(resource: Resource, name: str, *others: str) -> Resource:
    """Declare the US Core profile `name` (and `others`, full URLs) in `resource.meta.profile`."""
    resource["meta"] = {"profile": [*others, v.US_CORE + name]}
    return resource


def _with_common(resource: Resource, item: dict[str, Any]) -> Resource:
    extension = span_extension(item)
    if extension:
        resource["extension"] = extension
    return resource


def _system_code(value: Any) -> tuple[str | None, str | None]:
    """(code, display) of a `{system, code, display}` object, or (None, None)."""
    if isinstance(value, dict) and value.get("code"):
        return str(value["code"]), value.get("display")
    return None, None


# ---- patient and encounter -------------------------------------------------------------------------


def patient(extraction_patient: dict[str, Any] | None, source_sha256: str) -> Resource:
    """The note's patient: a note names no identifier we could trust, so the identifier is the note's
    own (its SHA-256) and the name is absent (US Core's data-absent-reason)."""
    sex = (extraction_patient or {}).get("sex")
    resource: Resource = {
        "resourceType": "Patient",
        "identifier": [{"system": v.PATIENT_IDENTIFIER_SYSTEM, "value": source_sha256}],
        "name": [{"extension": [{"url": v.DATA_ABSENT_REASON, "valueCode": "masked"}]}],
        "gender": v.ADMINISTRATIVE_GENDER.get(sex or "", "unknown"),
    }
    return us_core(resource, v.US_CORE_PROFILES["Patient"])


def encounter(context: Context) -> Resource:
    code = context.encounter_class if context.encounter_class in v.ENCOUNTER_CLASSES else "AMB"
    kind = context.note_type if context.note_type in v.ENCOUNTER_TYPES else None
    resource: Resource = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": coding(v.ACT_CODE, code, v.ENCOUNTER_CLASSES[code]),
        "type": [concept(None, coding(v.SNOMED, *v.ENCOUNTER_TYPES[kind]))],
        "subject": reference(context.patient),
    }
    if context.date:
        resource["period"] = {"start": context.date}
    return us_core(resource, v.US_CORE_PROFILES["Encounter"])


# ---- conditions and family history ------------------------------------------------------------------


def condition(context: Context, item: dict[str, Any]) -> Resource | None:
    status = v.CONDITION_STATUS.get(item.get("assertion", "present"))
    if status is None:
        return None
    clinical, verification = status
    code, display = _system_code(item.get("code"))
    codings = [coding(v.ICD10CM, code, display)] if code else []
    resource: Resource = {
        "resourceType": "Condition",
        "clinicalStatus": concept(None, coding(v.CONDITION_CLINICAL, clinical)),
        "verificationStatus": concept(None, coding(v.CONDITION_VERIFICATION, verification)),
        "category": [
            concept(None, coding(v.CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis"))
        ],
        "code": concept(item.get("text"), *codings),
        "subject": reference(context.patient),
        "encounter": reference(context.encounter),
        "evidence": [{"detail": [reference(context.document)]}],
    }
    if context.date:
        resource["recordedDate"] = context.date
    return _with_common(us_core(resource, v.US_CORE_PROFILES["Condition"]), item)


def family_member_history(context: Context, relationship: str, items: list[dict[str, Any]]) -> Resource:
    role = v.RELATIONSHIPS.get(relationship.casefold(), v.FAMILY_MEMBER)
    conditions = []
    for item in items:
        code, display = _system_code(item.get("code"))
        codings = [coding(v.ICD10CM, code, display)] if code else []
        conditions.append({"code": concept(item.get("condition") or item.get("text"), *codings)})
    resource: Resource = {
        "resourceType": "FamilyMemberHistory",
        "status": "completed",
        "patient": reference(context.patient),
        "relationship": concept(relationship, coding(v.ROLE_CODE, *role)),
        "condition": conditions,
    }
    if context.date:
        resource["date"] = context.date
    return _with_common(resource, items[0])


# ---- medications ------------------------------------------------------------------------------------


def timing(frequency: dict[str, Any] | None, duration: Any) -> dict[str, Any] | None:
    repeat: dict[str, Any] = {}
    if isinstance(frequency, dict):
        code = frequency.get("code")
        if code == "once":
            repeat["count"] = 1
        elif frequency.get("frequency") and frequency.get("period"):
            period_unit = v.PERIOD_UNITS.get(str(frequency.get("period_unit", "")).casefold())
            if period_unit:
                repeat["frequency"] = int(frequency["frequency"])
                repeat["period"] = frequency["period"]
                repeat["periodUnit"] = period_unit
        when = frequency.get("when")
        when_codes = [w for w in ([when] if isinstance(when, str) else when or []) if w in v.EVENT_TIMING]
        if when_codes:
            repeat["when"] = when_codes
    if isinstance(duration, dict) and duration.get("value"):
        unit = v.PERIOD_UNITS.get(str(duration.get("unit", "")).casefold())
        if unit:
            repeat["boundsDuration"] = quantity(duration["value"], unit)
    return {"repeat": repeat} if repeat else None


def dosage(item: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"text": item.get("text")}
    timing_value = timing(item.get("frequency"), item.get("duration"))
    if timing_value:
        result["timing"] = timing_value
    result["asNeededBoolean"] = bool(item.get("as_needed"))
    route = v.ROUTES.get(item.get("route") or "")
    if route:
        result["route"] = concept(item["route"], coding(v.SNOMED, *route))
    dose = item.get("dose")
    if isinstance(dose, dict) and dose.get("value") is not None and dose.get("unit"):
        result["doseAndRate"] = [{"doseQuantity": quantity(dose["value"], dose["unit"])}]
    return {key: value for key, value in result.items() if value is not None}


def medication_concept(item: dict[str, Any]) -> dict[str, Any]:
    code, display = _system_code(item.get("rxnorm"))
    codings = [coding(v.RXNORM, code, display)] if code else []
    return concept(item.get("name") or item.get("text"), *codings)


MEDICATION_STATEMENT_STATUS = {"active": "active", "stopped": "stopped", "held": "on-hold"}
# Why a mention is not the patient's medication (extraction `medications_not_taken[].reason`) -> the
# MedicationStatement (status not-taken) it becomes; the other reasons (another person's drug, a
# culture's susceptibility list) are not about the patient's medications at all and get no resource.
NOT_TAKEN_REASONS = {
    "refused": "Decided against or declined at this encounter",
    "hypothetical": "Only considered or conditional; not ordered",
    "do_not_give": "Not to be given",
    "not_to_take": "Patient told not to take it",
}


def medication(context: Context, item: dict[str, Any]) -> Resource:
    """MedicationRequest for a medication started or changed at this visit, else MedicationStatement."""
    status = item.get("status") or "active"
    if status in ("started", "changed"):
        resource: Resource = {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": medication_concept(item),
            "subject": reference(context.patient),
            "encounter": reference(context.encounter),
            "dosageInstruction": [dosage(item)],
        }
        if context.date:
            resource["authoredOn"] = context.date
        if status == "changed":
            resource["note"] = [{"text": "Dose or schedule changed at this encounter."}]
        us_core(resource, v.US_CORE_PROFILES["MedicationRequest"])
    else:
        resource = {
            "resourceType": "MedicationStatement",
            "status": MEDICATION_STATEMENT_STATUS.get(status, "unknown"),
            "medicationCodeableConcept": medication_concept(item),
            "subject": reference(context.patient),
            "context": reference(context.encounter),
            "derivedFrom": [reference(context.document)],
            "dosage": [dosage(item)],
        }
        if context.date:
            resource["dateAsserted"] = context.date
    return _with_common(resource, item)


def not_taken(context: Context, item: dict[str, Any]) -> Resource | None:
    """A drug the note decided against (or must not be given): MedicationStatement `not-taken`."""
    reason = NOT_TAKEN_REASONS.get(item.get("reason") or "")
    if reason is None:
        return None
    resource: Resource = {
        "resourceType": "MedicationStatement",
        "status": "not-taken",
        "statusReason": [concept(reason)],
        "medicationCodeableConcept": medication_concept(item),
        "subject": reference(context.patient),
        "context": reference(context.encounter),
        "derivedFrom": [reference(context.document)],
    }
    if context.date:
        resource["dateAsserted"] = context.date
    return _with_common(resource, item)


def detected_issue(context: Context, issue: dict[str, Any], implicated: list[str]) -> Resource:
    """An order for a drug the patient is documented to be allergic to: flagged, not ordered."""
    resource: Resource = {
        "resourceType": "DetectedIssue",
        "status": "preliminary",
        "code": concept("Drug-allergy contraindication"),
        "severity": "high",
        "patient": reference(context.patient),
        "detail": str(issue.get("detail") or ""),
        "implicated": [reference(url) for url in implicated],
    }
    if context.date:
        resource["identifiedDateTime"] = context.date
    return _with_common(resource, issue)


# ---- observations -----------------------------------------------------------------------------------


def _observation(context: Context, category: str, code: dict[str, Any]) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [concept(None, coding(v.OBSERVATION_CATEGORY, category))],
        "code": code,
        "subject": reference(context.patient),
        "encounter": reference(context.encounter),
        "derivedFrom": [reference(context.document)],
    }
    if context.date:
        resource["effectiveDateTime"] = context.date
    return resource


def vital_sign(context: Context, item: dict[str, Any]) -> Resource | None:
    kind = item.get("kind")
    if kind not in v.VITAL_SIGNS:
        return None
    loinc, display = v.VITAL_SIGNS[kind]
    codings = [coding(v.LOINC, loinc, display)]
    if kind == "oxygen_saturation" and item.get("loinc") == v.PULSE_OXIMETRY[0]:
        codings.insert(0, coding(v.LOINC, *v.PULSE_OXIMETRY))
    if kind == "oxygen_saturation" and v.PULSE_OXIMETRY[0] not in {c["code"] for c in codings}:
        codings.insert(0, coding(v.LOINC, *v.PULSE_OXIMETRY))  # SpO2 in a note: by pulse oximetry
    resource = _observation(context, "vital-signs", concept(display, *codings))
    us_core(resource, v.US_CORE_VITAL_PROFILES[kind], v.VITAL_SIGNS_PROFILE)
    if kind == "blood_pressure":
        resource["component"] = [
            {
                "code": concept(None, coding(v.LOINC, *part)),
                "valueQuantity": quantity(item[field], item.get("unit") or "mm[Hg]"),
            }
            for part, field in ((v.SYSTOLIC, "systolic"), (v.DIASTOLIC, "diastolic"))
        ]
    else:
        resource["valueQuantity"] = quantity(item["value"], item["unit"])
    return _with_common(resource, item)


def lab_result(context: Context, item: dict[str, Any], loinc_display: str | None) -> Resource:
    loinc = item.get("loinc")
    codings = [coding(v.LOINC, loinc, loinc_display)] if loinc else []
    resource = us_core(
        _observation(context, "laboratory", concept(item.get("name"), *codings)),
        v.US_CORE_PROFILES["laboratory"],
    )
    value = item.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if item.get("unit"):
            resource["valueQuantity"] = quantity(value, item["unit"])
        else:
            resource["valueQuantity"] = {"value": value}
    elif value is not None:
        resource["valueString"] = str(value)
    flag = v.INTERPRETATION.get(item.get("flag") or "")
    if flag:
        resource["interpretation"] = [concept(None, coding(v.OBSERVATION_INTERPRETATION, *flag))]
    reference_range = item.get("reference_range")
    if reference_range:
        resource["referenceRange"] = [{"text": str(reference_range)}]
    return _with_common(resource, item)


# ---- allergies, procedures, plan --------------------------------------------------------------------


def allergy(context: Context, item: dict[str, Any]) -> Resource:
    code, display = _system_code(item.get("rxnorm"))
    codings = [coding(v.RXNORM, code, display)] if code else []
    resource: Resource = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": concept(None, coding(v.ALLERGY_CLINICAL, "active")),
        "verificationStatus": concept(
            None, coding(v.ALLERGY_VERIFICATION, item.get("verification") or "confirmed")
        ),
        "code": concept(item.get("substance") or item.get("text"), *codings),
        "patient": reference(context.patient),
        "encounter": reference(context.encounter),
    }
    if context.date:
        resource["recordedDate"] = context.date
    if item.get("reaction"):
        resource["reaction"] = [{"manifestation": [concept(str(item["reaction"]))]}]
    return _with_common(us_core(resource, v.US_CORE_PROFILES["AllergyIntolerance"]), item)


def procedure(context: Context, item: dict[str, Any]) -> Resource:
    resource: Resource = {
        "resourceType": "Procedure",
        "status": "completed",
        "code": concept(item.get("text")),
        "subject": reference(context.patient),
    }
    # US Core: a completed procedure states when; a note that does not say is stated as such.
    resource["performedString"] = str(item.get("date") or "date not stated in the note")
    return _with_common(us_core(resource, v.US_CORE_PROFILES["Procedure"]), item)


# Plan items that are orders get a ServiceRequest; the rest are CarePlan activities.
ORDER_KINDS = frozenset({"test", "referral", "procedure"})


def service_request(context: Context, item: dict[str, Any]) -> Resource:
    resource: Resource = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [concept(item.get("kind"))],
        "code": concept(item.get("text")),
        "subject": reference(context.patient),
        "encounter": reference(context.encounter),
    }
    if context.date:
        resource["authoredOn"] = context.date
    return _with_common(us_core(resource, v.US_CORE_PROFILES["ServiceRequest"]), item)


def care_plan(context: Context, activities: list[dict[str, Any]], orders: list[str]) -> Resource:
    """The visit's plan: free-text activities plus references to the ServiceRequests ordered."""
    items = "".join(f"<li>{html.escape(str(item.get('text') or ''))}</li>" for item in activities)
    narrative = "<p>Plan from the source note</p>" + (f"<ul>{items}</ul>" if items else "")
    resource: Resource = {
        "resourceType": "CarePlan",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{narrative}</div>',
        },
        "status": "active",
        "intent": "plan",
        "category": [concept(None, coding(v.US_CORE_CAREPLAN_CATEGORY, "assess-plan"))],
        "title": "Plan from the source note",
        "subject": reference(context.patient),
        "encounter": reference(context.encounter),
        "activity": [
            {"detail": {"status": "not-started", "description": item.get("text") or ""}}
            for item in activities
        ]
        + [{"reference": reference(url)} for url in orders],
    }
    return us_core(resource, v.US_CORE_PROFILES["CarePlan"])


# ---- the source note and where the data came from ---------------------------------------------------


def document_reference(context: Context, source_sha256: str, attachment: dict[str, Any]) -> Resource:
    code, display = v.DOCUMENT_TYPES.get(context.note_type, v.DOCUMENT_TYPES[None])
    resource: Resource = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": v.SOURCE_HASH_SYSTEM, "value": source_sha256},
        "status": "current",
        "type": concept(display, coding(v.LOINC, code, display)),
        "category": [concept(None, coding(v.US_CORE_DOCUMENT_CATEGORY, "clinical-note", "Clinical Note"))],
        "subject": reference(context.patient),
        "content": [{"attachment": attachment}],
        "context": {"encounter": [reference(context.encounter)]},
    }
    if context.date:
        resource["context"]["period"] = {"start": context.date}
    return us_core(resource, v.US_CORE_PROFILES["DocumentReference"])


def device(pipeline_version: str, provider: str, model: str | None) -> Resource:
    name = f"medical-notes extraction {pipeline_version}"
    resource: Resource = {
        "resourceType": "Device",
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "version": [{"value": pipeline_version}],
    }
    if provider and provider != "offline":
        resource["note"] = [{"text": f"LLM provider {provider}, model {model or 'unknown'}"}]
    return resource


def provenance(context: Context, targets: list[str], device_url: str, recorded: str) -> Resource:
    resource: Resource = {
        "resourceType": "Provenance",
        "target": [reference(url) for url in targets],
        "recorded": recorded,
        "agent": [
            {
                "type": concept(None, coding(v.PROVENANCE_PARTICIPANT, "assembler", "Assembler")),
                "who": reference(device_url),
            }
        ],
        "entity": [{"role": "source", "what": reference(context.document)}],
    }
    return us_core(resource, v.US_CORE_PROFILES["Provenance"])
