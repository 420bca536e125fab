"""Structured extraction from clinical notes: coded conditions, medications, vitals, labs and more,
offline and deterministic, every value with the character span it came from."""

from medical_notes.extraction.pipeline import (
    PIPELINE_VERSION,
    extract_structured,
    extraction_id,
    source_sha256,
)

__all__ = ["PIPELINE_VERSION", "extract_structured", "extraction_id", "source_sha256"]
