"""Turn an extraction result (the `/extract_structured` shape) into a validated FHIR R4 Bundle."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import uuid
from collections import Counter
from typing import Any, Literal

from medical_notes.fhir import resources
from medical_notes.fhir.models import FhirResult, Validation
from medical_notes.fhir.validation import validate_bundle

BundleType = Literal["collection", "transaction"]

# All ids in our bundles are uuid5 names in this namespace: the same note and item give the same id.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://medical-notes.invalid/fhir")
_EPOCH = "1970-01-01T00:00:00Z"


class _Entries:
    """Collects the bundle's resources with their deterministic `urn:uuid:` full URLs."""

    def __init__(self, source_sha256: str) -> None:
        self.source_sha256 = source_sha256
        self.items: list[tuple[str, resources.Resource]] = []
        self._seen: set[str] = set()

    def url(self, kind: str, key: str) -> str:
        identifier = uuid.uuid5(ID_NAMESPACE, f"{self.source_sha256}/{kind}/{key}")
        url = f"urn:uuid:{identifier}"
        if url in self._seen:
            raise ValueError(f"two bundle entries for {kind}/{key}")
        self._seen.add(url)
        return url

    def add(self, url: str, resource: resources.Resource | None) -> None:
        if resource is not None:
            self.items.append((url, resource))


def _item_key(index: int, item: dict[str, Any]) -> str:
    span = item.get("span") or []
    return f"{index}:{'-'.join(str(offset) for offset in span)}"


def _encounter_date(extraction: dict[str, Any], warnings: list[str]) -> str | None:
    date = (extraction.get("encounter") or {}).get("date")
    if date is None:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return datetime.date.fromisoformat(date).isoformat()
    warnings.append(f"encounter date {date!r} is not an ISO date (YYYY-MM-DD); left out")
    return None


def _recorded(recorded: str | None, date: str | None, warnings: list[str]) -> str:
    if recorded:
        return recorded
    if date:
        return f"{date}T00:00:00Z"
    warnings.append("the note states no date: Provenance.recorded is set to the Unix epoch")
    return _EPOCH


def _attachment(source_text: str | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"contentType": "text/plain; charset=utf-8", "title": "Source note"}
    if source_text is not None:
        data = source_text.encode("utf-8")
        attachment["data"] = base64.b64encode(data).decode("ascii")
        attachment["size"] = len(data)
        # FHIR R4 Attachment.hash is the base64 of the SHA-1 of the data.
        sha1 = hashlib.sha1(data, usedforsecurity=False).digest()
        attachment["hash"] = base64.b64encode(sha1).decode("ascii")
    return attachment


def _loinc_display(code: str | None) -> str | None:
    if not code:
        return None
    try:
        from medical_notes.extraction.terminology import loinc_lookup
    except ImportError:
        return None
    return loinc_lookup(code)


def build_bundle(
    extraction: dict[str, Any],
    *,
    bundle_type: BundleType = "collection",
    source_text: str | None = None,
    recorded: str | None = None,
) -> FhirResult:
    """Build the FHIR R4 Bundle for `extraction` and validate it before returning it.

    `source_text` (the note) goes into the DocumentReference as its attachment when given; `recorded` is
    Provenance.recorded (an instant), by default the encounter date.
    """
    if bundle_type not in ("collection", "transaction"):
        raise ValueError(f"bundle_type must be 'collection' or 'transaction', not {bundle_type!r}")
    warnings: list[str] = []
    source_sha256 = extraction.get("source_sha256")
    if not source_sha256:
        if source_text is None:
            raise ValueError("the extraction has no source_sha256 and no source_text was given")
        source_sha256 = hashlib.sha256(source_text.encode("utf-8")).hexdigest()

    entries = _Entries(source_sha256)
    patient_url = entries.url("Patient", "patient")
    encounter_url = entries.url("Encounter", "encounter")
    document_url = entries.url("DocumentReference", "source")
    device_url = entries.url("Device", "pipeline")
    date = _encounter_date(extraction, warnings)
    encounter = extraction.get("encounter") or {}
    context = resources.Context(
        patient=patient_url,
        encounter=encounter_url,
        document=document_url,
        date=date,
        note_type=encounter.get("note_type"),
        encounter_class=encounter.get("class") or "AMB",
    )

    entries.add(patient_url, resources.patient(extraction.get("patient"), source_sha256))
    entries.add(encounter_url, resources.encounter(context))
    entries.add(document_url, resources.document_reference(context, source_sha256, _attachment(source_text)))
    entries.add(
        device_url,
        resources.device(
            str(extraction.get("pipeline_version") or "unknown"),
            str(extraction.get("provider") or "offline"),
            extraction.get("model"),
        ),
    )

    for index, item in enumerate(extraction.get("conditions") or []):
        entries.add(entries.url("Condition", _item_key(index, item)), resources.condition(context, item))

    by_relationship: dict[str, list[dict[str, Any]]] = {}
    for item in extraction.get("family_history") or []:
        relationship = str(item.get("relationship") or "family member").strip()
        by_relationship.setdefault(relationship.casefold(), []).append(item)
    for relationship, items in by_relationship.items():
        url = entries.url("FamilyMemberHistory", relationship)
        entries.add(url, resources.family_member_history(context, relationship, items))

    for index, item in enumerate(extraction.get("medications") or []):
        entries.add(entries.url("Medication", _item_key(index, item)), resources.medication(context, item))
    for index, item in enumerate(extraction.get("medications_not_taken") or []):
        entries.add(entries.url("NotTaken", _item_key(index, item)), resources.not_taken(context, item))
    for index, item in enumerate(extraction.get("vital_signs") or []):
        resource = resources.vital_sign(context, item)
        if resource is None:
            warnings.append(f"vital sign kind {item.get('kind')!r} is not a FHIR vital sign; left out")
        entries.add(entries.url("VitalSign", _item_key(index, item)), resource)
    for index, item in enumerate(extraction.get("lab_results") or []):
        resource = resources.lab_result(context, item, _loinc_display(item.get("loinc")))
        entries.add(entries.url("Laboratory", _item_key(index, item)), resource)
    allergy_urls: dict[str, str] = {}  # substance -> AllergyIntolerance
    for index, item in enumerate(extraction.get("allergies") or []):
        url = entries.url("AllergyIntolerance", _item_key(index, item))
        allergy_urls[str(item.get("substance") or item.get("text") or "").casefold()] = url
        entries.add(url, resources.allergy(context, item))
    for index, issue in enumerate(extraction.get("detected_issues") or []):
        allergy = allergy_urls.get(str(issue.get("allergy") or "").casefold())
        entries.add(
            entries.url("DetectedIssue", _item_key(index, issue)),
            resources.detected_issue(context, issue, [allergy] if allergy else []),
        )
    for index, item in enumerate(extraction.get("procedures") or []):
        entries.add(entries.url("Procedure", _item_key(index, item)), resources.procedure(context, item))

    plan = extraction.get("plan") or []
    orders: list[str] = []
    for index, item in enumerate(plan):
        if item.get("kind") in resources.ORDER_KINDS:
            url = entries.url("ServiceRequest", _item_key(index, item))
            entries.add(url, resources.service_request(context, item))
            orders.append(url)
    activities = [item for item in plan if item.get("kind") not in resources.ORDER_KINDS]
    if plan:
        entries.add(entries.url("CarePlan", "plan"), resources.care_plan(context, activities, orders))

    targets = [url for url, resource in entries.items if resource["resourceType"] != "Device"]
    provenance_url = entries.url("Provenance", "provenance")
    entries.add(
        provenance_url,
        resources.provenance(context, targets, device_url, _recorded(recorded, date, warnings)),
    )

    bundle = _assemble(entries, bundle_type)
    errors, validation_warnings = validate_bundle(bundle)
    counts = Counter(resource["resourceType"] for _, resource in entries.items)
    return FhirResult(
        bundle=bundle,
        validation=Validation(valid=not errors, errors=errors, warnings=warnings + validation_warnings),
        resource_counts=dict(sorted(counts.items())),
    )


def _assemble(entries: _Entries, bundle_type: BundleType) -> dict[str, Any]:
    bundle_entries = []
    for url, resource in entries.items:
        entry: dict[str, Any] = {"fullUrl": url}
        if bundle_type == "transaction":
            # The server assigns ids on create and rewrites the urn:uuid references to them.
            entry["resource"] = resource
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        else:
            entry["resource"] = {
                "resourceType": resource["resourceType"],
                "id": url.removeprefix("urn:uuid:"),
            }
            entry["resource"].update({k: value for k, value in resource.items() if k != "resourceType"})
        bundle_entries.append(entry)
    bundle_id = uuid.uuid5(ID_NAMESPACE, f"{entries.source_sha256}/Bundle/{bundle_type}")
    return {"resourceType": "Bundle", "id": str(bundle_id), "type": bundle_type, "entry": bundle_entries}
