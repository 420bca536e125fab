"""Prompts for the language-model providers, rendered from the Jinja2 templates in prompts/."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from medical_notes.providers.base import Passage

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"

# The prompts are plain text sent to a model, not HTML: escaping would turn "<" in a note into "&lt;".
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(PROMPTS_DIR),
    autoescape=False,  # noqa: S701
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


def _render(template: str, **values: object) -> str:
    return _ENVIRONMENT.get_template(template).render(**values).strip()


def _prompt(template: str, **values: object) -> Prompt:
    return Prompt(system=_render("system.j2"), user=_render(template, **values))


def summarize_prompt(note: str) -> Prompt:
    return _prompt("summarize.j2", note=note)


def query_note_prompt(note: str, query: str) -> Prompt:
    return _prompt("query_note.j2", note=note, query=query)


def answer_question_prompt(question: str, passages: Sequence[Passage]) -> Prompt:
    return _prompt("answer_question.j2", question=question, passages=passages)


def extraction_prompt(note: str, candidates: str) -> Prompt:
    """Structured extraction: the note and the rule candidates in, one JSON object out."""
    return Prompt(
        system=_render("extract_system.j2"),
        user=_render("extract_structured.j2", note=note, candidates=candidates),
    )
