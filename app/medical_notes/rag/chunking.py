"""Split guideline Markdown files into section-aligned chunks for retrieval."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Tokens are approximated as words plus punctuation marks, which tracks model tokenizers closely
# enough for sizing chunks without downloading one.
DEFAULT_MAX_TOKENS = 500
DEFAULT_OVERLAP_TOKENS = 60
CHUNKING_VERSION = f"sections-v1-{DEFAULT_MAX_TOKENS}-{DEFAULT_OVERLAP_TOKENS}"
SECTION_SEPARATOR = " > "

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


@dataclass(frozen=True)
class Chunk:
    document: str  # guideline title (the file's "# " heading)
    section: str  # heading path below the title, e.g. "Pharmacological Therapy > Insulin"
    source: str  # file name relative to the guidelines directory
    text: str
    tokens: int

    def embedding_text(self) -> str:
        """Text that is embedded: the headings carry much of the topic, so they are included."""
        return f"{self.document}\n{self.section}\n{self.text}"


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class SourceFile:
    name: str  # path relative to the guidelines directory
    content: bytes


def load_sources(guidelines_dir: Path) -> list[SourceFile]:
    """Read every guideline once, so the checksum and the chunks come from the same bytes."""
    paths = sorted(path for path in guidelines_dir.glob("*.md") if path.is_file())
    return [SourceFile(path.relative_to(guidelines_dir).as_posix(), path.read_bytes()) for path in paths]


def sources_checksum(sources: Iterable[SourceFile]) -> str:
    """sha256 over names and contents: renaming, editing, adding or removing a file changes it."""
    digest = hashlib.sha256()
    digest.update(CHUNKING_VERSION.encode())
    for source in sorted(sources, key=lambda item: item.name):
        name = source.name.encode()
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(source.content).to_bytes(8, "big") + source.content)
    return digest.hexdigest()


def chunk_sources(
    sources: Iterable[SourceFile],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    chunks: list[Chunk] = []
    for source in sources:
        chunks.extend(
            chunk_markdown(
                source.content.decode("utf-8"),
                source=source.name,
                max_tokens=max_tokens,
                overlap_tokens=overlap_tokens,
            )
        )
    return chunks


def chunk_markdown(
    markdown: str,
    *,
    source: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """One or more chunks per heading; a section longer than max_tokens is split with overlap."""
    if overlap_tokens >= max_tokens:
        raise ValueError("overlap_tokens must be smaller than max_tokens")
    markdown = _HTML_COMMENT.sub("", markdown)
    title = Path(source).stem.replace("-", " ").replace("_", " ").title()
    headings: list[tuple[int, str]] = []  # (level, text) of the current heading path
    body: list[str] = []
    sections: list[tuple[str, str]] = []
    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if not match:
            body.append(line)
            continue
        sections.append((_section_path(headings), "\n".join(body)))
        body = []
        level, text = len(match.group(1)), match.group(2)
        if level == 1 and not any(lvl == 1 for lvl, _ in headings):
            title = text
        headings = [(lvl, txt) for lvl, txt in headings if lvl < level] + [(level, text)]
    sections.append((_section_path(headings), "\n".join(body)))

    chunks: list[Chunk] = []
    for section, text in sections:
        for piece in _split_section(text, max_tokens, overlap_tokens):
            chunks.append(
                Chunk(
                    document=title,
                    section=section or "Introduction",
                    source=source,
                    text=piece,
                    tokens=count_tokens(piece),
                )
            )
    return chunks


def _section_path(headings: list[tuple[int, str]]) -> str:
    return SECTION_SEPARATOR.join(text for level, text in headings if level > 1)


def _split_section(text: str, max_tokens: int, overlap_tokens: int) -> list[str]:
    units = [part for unit in _text_units(text) for part in _split_long_unit(unit, max_tokens)]
    if not units:
        return []
    pieces: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for unit in units:
        unit_tokens = count_tokens(unit)
        if current and current_tokens + unit_tokens > max_tokens:
            pieces.append(_join(current))
            current = _overlap_tail(current, overlap_tokens)
            current_tokens = sum(count_tokens(u) for u in current)
        current.append(unit)
        current_tokens += unit_tokens
    if current:
        pieces.append(_join(current))
    return pieces


def _text_units(text: str) -> list[str]:
    """Sentences and list items, the smallest pieces a chunk boundary may fall between."""
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if lines[0].startswith(("- ", "* ")) or re.match(r"\d+[.)] ", lines[0]):
            items: list[str] = []
            for line in lines:
                if line.startswith(("- ", "* ")) or re.match(r"\d+[.)] ", line) or not items:
                    items.append(line)
                else:
                    items[-1] += " " + line
            units.extend(items)
            units[-1] += "\n"
        else:
            sentences = _SENTENCE_END.split(" ".join(lines))
            units.extend(sentences)
            units[-1] += "\n"
    return units


def _split_long_unit(unit: str, max_tokens: int) -> list[str]:
    """A single sentence longer than a whole chunk is cut at word boundaries."""
    if count_tokens(unit) <= max_tokens:
        return [unit]
    parts: list[str] = []
    words: list[str] = []
    tokens = 0
    for word in unit.split():
        word_tokens = count_tokens(word)
        if words and tokens + word_tokens > max_tokens:
            parts.append(" ".join(words))
            words, tokens = [], 0
        words.append(word)
        tokens += word_tokens
    parts.append(" ".join(words) + ("\n" if unit.endswith("\n") else ""))
    return parts


def _overlap_tail(units: list[str], overlap_tokens: int) -> list[str]:
    tail: list[str] = []
    tokens = 0
    for unit in reversed(units):
        unit_tokens = count_tokens(unit)
        if tokens + unit_tokens > overlap_tokens:
            break
        tail.insert(0, unit)
        tokens += unit_tokens
    return tail


def _join(units: list[str]) -> str:
    text = ""
    for unit in units:
        if text and not text.endswith("\n"):
            text += "\n" if unit.startswith(("- ", "* ")) else " "
        text += unit
    return text.strip()
