"""FHIR R4 export of structured extractions: a validated Bundle built offline and deterministically."""

from medical_notes.fhir.bundle import BundleType, build_bundle
from medical_notes.fhir.models import FhirResult, Validation

__all__ = ["BundleType", "FhirResult", "Validation", "build_bundle"]
