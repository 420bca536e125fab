"""The answer of the FHIR export: the bundle, its validation report and a count per resource type."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Validation(BaseModel):
    valid: bool
    errors: list[str]
    warnings: list[str]


class FhirResult(BaseModel):
    bundle: dict[str, Any]
    validation: Validation
    resource_counts: dict[str, int]
