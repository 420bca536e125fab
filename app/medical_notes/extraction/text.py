"""The note's layout: sections (by their headings), sentences and list items, with character offsets."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

# Heading words -> section kind. A heading is a line that starts with one of these (markdown #, bold
# ** or upper case allowed), followed by ":" or the end of the line.
SECTION_NAMES: dict[str, str] = {
    "s": "subjective",
    "subjective": "subjective",
    "history of present illness": "subjective",
    "hpi": "subjective",
    "cc": "subjective",
    "chief complaint": "subjective",
    "o": "objective",
    "objective": "objective",
    "exam": "objective",
    "physical exam": "objective",
    "examination": "objective",
    "vitals": "vitals",
    "vital signs": "vitals",
    "home vitals": "vitals",
    "labs": "labs",
    "laboratory": "labs",
    "lab results": "labs",
    "results": "labs",
    "a": "assessment",
    "assessment": "assessment",
    "impression": "assessment",
    "diagnoses": "assessment",
    "diagnosis": "assessment",
    "problem list": "assessment",
    "problems": "assessment",
    "a/p": "assessment_plan",
    "assessment and plan": "assessment_plan",
    "assessment/plan": "assessment_plan",
    "assessment & plan": "assessment_plan",
    "p": "plan",
    "plan": "plan",
    "recommendations": "plan",
    "medications": "medications",
    "meds": "medications",
    "current medications": "medications",
    "current meds": "medications",
    "medication list": "medications",
    "home medications": "medications",
    "allergies": "allergies",
    "all": "allergies",
    "allergies/intolerances": "allergies",
    "allergy": "allergies",
    "drug allergies": "allergies",
    "family history": "family_history",
    "family": "family_history",
    "fhx": "family_history",
    "fh": "family_history",
    "family hx": "family_history",
    "social history": "social_history",
    "shx": "social_history",
    "sh": "social_history",
    "past medical history": "past_history",
    "pmh": "past_history",
    "pmhx": "past_history",
    "past history": "past_history",
    "past surgical history": "past_surgical_history",
    "psh": "past_surgical_history",
    "surgical history": "past_surgical_history",
    "review of systems": "ros",
    "ros": "ros",
}

# Sections that notes often write on one line ("Allergies: NKDA") before going on with something else.
ONE_LINE_SECTIONS = frozenset({"allergies", "family_history", "social_history", "precautions"})
# Return precautions / warning signs under a heading of their own ("Warning signs:", "Call if:", "Call 911
# if:", "ED precautions reviewed: ...", "When to seek care:"): what follows is what the patient does not have.
_PRECAUTION_HEADING = re.compile(
    r"[ \t]*(?:#{1,6}[ \t]*)?(?:[-*\u2022][ \t]*)?(?:\*\*|__)?(?:(?:strict |ed |er |emergency |return |"
    r"bleeding |seizure |safety |fall |return to (?:the )?(?:ed|er) )?precautions?(?: (?:given|reviewed|"
    r"discussed|provided|reviewed with (?:pt|patient|parents?|family)))?"
    r"|warning signs(?: reviewed| discussed)?|red flags?(?: reviewed)?|reasons to (?:return|call)"
    r"|when to (?:call|return|seek (?:care|help)|go to "
    r"(?:the )?(?:ed|er))|(?:return|come back|go to (?:the )?(?:ed|er|l&d(?: triage)?)|seek (?:medical )?"
    r"(?:care|attention)|call(?: 911| us| md| the (?:office|clinic)| clinic)?)(?: (?:immediately|right "
    r"away|sooner))? (?:if|for)(?: any(?: of the following)?)?|signs to watch for|watch for)"
    r"(?:\*\*|__)?[ \t]*:",
    re.I,
)
# A heading line that ends with ":" and gives the patient's instructions for when to come back ("Warning
# signs - come back if:", "Call us / return if:"), or a bare upper-case "RETURN/CALL PRECAUTIONS".
_PRECAUTION_LINE = re.compile(
    r"[ \t]*(?:#{1,6}[ \t]*)?(?:[-*\u2022][ \t]*)?(?:\*\*|_"
    r"_)?(?=[^:\n]{0,60}?(?:\b(?:precautions?|warning signs"
    r"|red flags?|return|come back|call|go to (?:the )?(?:ed|er|triage|l&d)|seek)\b))[^:\n]{0,60}?"
    r"(?:\b(?:precautions?|warning signs|red flags?)|\b(?:if|for|when)(?: any(?: of the following)?)?)"
    r"(?:\*\*|__)?[ \t]*(?::(?:\*\*|__)?[ \t]*$|$)",
    re.I,
)
_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?(?P<name>[A-Za-z][A-Za-z /&]{0,40}?)(?:\*\*|__)?[ \t]*"
    r"(?:(?P<colon>:|[ \t][—\u2013-][ \t])(?:\*\*|__)?|(?=[ \t]*$))"
)
_SENTENCE_END = re.compile(r"[.;!?](?=\s)|\n")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*•#]|\d{1,2}[.)]|\(\d{1,2}\))[ \t]+")


@dataclass(frozen=True)
class Section:
    kind: str
    start: int  # first character of the content (after the heading)
    end: int
    heading_start: int


@dataclass(frozen=True)
class Segment:
    """A sentence or list item: the unit inside which assertion triggers apply."""

    start: int
    end: int


class NoteLayout:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sections = _find_sections(text)
        self._section_starts = [section.heading_start for section in self.sections]
        self.segments = _find_segments(text)
        self._segment_starts = [segment.start for segment in self.segments]

    def section_at(self, position: int) -> str:
        index = bisect_right(self._section_starts, position) - 1
        return self.sections[index].kind if index >= 0 else "preamble"

    def segment_at(self, position: int) -> Segment:
        index = bisect_right(self._segment_starts, position) - 1
        return self.segments[max(index, 0)]

    def line_bounds(self, position: int) -> tuple[int, int]:
        start = self.text.rfind("\n", 0, position) + 1
        end = self.text.find("\n", position)
        return start, len(self.text) if end < 0 else end


def _find_sections(text: str) -> list[Section]:
    """Headings in order. A heading with its content on the same line ("Allergies: penicillin") covers that
    line and the list items under it; the next other line goes back to the section around it."""
    sections: list[Section] = []
    offset = 0
    enclosing = "preamble"
    inline = False
    for line in text.splitlines(keepends=True):
        match = _HEADING.match(line)
        kind = None
        if match:
            name = " ".join(match.group("name").lower().split())
            kind = SECTION_NAMES.get(name)
            # A bare word on its own line is a heading only when it is one of the long names
            if not (kind and (match.group("colon") or len(name) > 2 or line.strip().isupper())):
                kind = None
        if kind is None and _PRECAUTION_HEADING.match(line):
            kind = "precautions"
            match = _PRECAUTION_HEADING.match(line)
        elif (
            kind is None and _PRECAUTION_LINE.match(line) and (line.rstrip().endswith(":") or line.isupper())
        ):
            kind = "precautions"
            match = _PRECAUTION_LINE.match(line)
        if kind and match:
            has_content = bool(line[match.end() :].strip())
            sections.append(Section(kind, offset + match.end(), offset + len(line), offset))
            if kind == "precautions":
                # the list under the heading, or the rest of its sentence; then the section around it
                sentence_end = _SENTENCE_END.search(line, match.end())
                if has_content and sentence_end and line[sentence_end.end() :].strip():
                    sections.append(
                        Section(
                            enclosing,
                            offset + sentence_end.end(),
                            offset + len(line),
                            offset + sentence_end.end(),
                        )
                    )
                    inline = False
                else:
                    inline = True
            elif not has_content:
                enclosing = kind
                inline = False
            else:
                inline = kind in ONE_LINE_SECTIONS
        elif inline and line.strip() and not _LIST_ITEM.match(line) and not line[:1].isspace():
            sections.append(Section(enclosing, offset, offset + len(line), offset))
            inline = False
        offset += len(line)
    # a section runs to the next heading
    if not sections:
        return []
    ends = [following.heading_start for following in sections[1:]] + [len(text)]
    return [
        Section(section.kind, section.start, end, section.heading_start)
        for section, end in zip(sections, ends, strict=True)
    ]


def _find_segments(text: str) -> list[Segment]:
    """Split at sentence ends, at list items and at headings; a line wrapped inside a sentence stays one
    segment."""
    segments: list[Segment] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        position = match.start()
        if text[position] == "\n":
            following = text[position + 1 : position + 80]
            previous = text[start:position].rstrip()
            continues = (
                previous
                and following.strip()
                and not _LIST_ITEM.match(following)
                and _HEADING.match(following.split("\n", 1)[0]) is None
                and not previous.endswith((":", "."))
                and following[:1] not in "|"
            )
            if continues and not _starts_new_line_item(following):
                continue
        if position > start:
            segments.append(Segment(start, position + (0 if text[position] == "\n" else 1)))
        start = position + 1
    if start < len(text):
        segments.append(Segment(start, len(text)))
    return segments or [Segment(0, len(text))]


def _starts_new_line_item(following: str) -> bool:
    """Lines of "Key: value" lists or upper-case labels start a new segment."""
    first_line = following.split("\n", 1)[0]
    return bool(re.match(r"[ \t]*[A-Z][A-Za-z0-9 /()]{0,30}:", first_line))
