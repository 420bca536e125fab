"""Load the shipped SOAP notes into the documents table, keyed by file stem (documents.source_key)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg

from medical_notes import db
from medical_notes.config import Settings
from medical_notes.documents import content_hash

DEFAULT_DOC_TYPE = "soap_note"


class ShippedNoteError(ValueError):
    """A shipped note file cannot be read; the message names the file."""


@dataclass(frozen=True)
class ShippedNote:
    source_key: str
    title: str
    doc_type: str
    content: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class SeedResult:
    inserted: int
    updated: int
    unchanged: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def shipped_note_files(notes_dir: Path) -> list[Path]:
    return sorted(path for path in notes_dir.glob("*.md") if path.is_file())


def parse_note(path: Path) -> ShippedNote:
    """Front matter of `key: value` lines between `---` lines, then the Markdown body."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ShippedNoteError(f"{path}: missing front matter (first line must be ---)")
    try:
        end = next(number for number, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise ShippedNoteError(f"{path}: front matter is not closed with ---") from None
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        if not line.strip():
            continue
        key, separator, value = line.partition(":")
        if not separator or not key.strip():
            raise ShippedNoteError(f"{path}: front matter line is not `key: value`: {line!r}")
        fields[key.strip()] = value.strip()
    title = fields.pop("title", "").strip()
    if not title:
        raise ShippedNoteError(f"{path}: front matter has no title")
    doc_type = fields.pop("doc_type", "").strip() or DEFAULT_DOC_TYPE
    content = "\n".join(lines[end + 1 :]).strip() + "\n"
    if not content.strip():
        raise ShippedNoteError(f"{path}: note body is empty")
    return ShippedNote(
        source_key=path.stem, title=title[:255], doc_type=doc_type, content=content, metadata=fields
    )


def load_shipped_notes(notes_dir: Path) -> list[ShippedNote]:
    return [parse_note(path) for path in shipped_note_files(notes_dir)]


async def seed_notes(
    connection: asyncpg.Connection,
    notes: list[ShippedNote],
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Insert missing shipped notes; with force also rewrite shipped notes that differ from the files.

    Rows with source_key NULL (created by users) are never read or written here. One transaction:
    either every note is in place or none changed.
    """
    inserted = updated = unchanged = 0
    async with connection.transaction():
        for done, note in enumerate(notes, start=1):
            digest = content_hash(note.content)
            existing = await connection.fetchrow(
                "SELECT title, doc_type, metadata, content_hash FROM documents WHERE source_key = $1",
                note.source_key,
            )
            if existing is None:
                await connection.execute(
                    """
                    INSERT INTO documents (title, content, doc_type, metadata, source_key, content_hash)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (source_key) DO NOTHING
                    """,
                    note.title,
                    note.content,
                    note.doc_type,
                    note.metadata,
                    note.source_key,
                    digest,
                )
                inserted += 1
            elif force and _differs(existing, note, digest):
                await connection.execute(
                    """
                    UPDATE documents
                    SET title = $2, content = $3, doc_type = $4, metadata = $5, content_hash = $6,
                        updated_at = now()
                    WHERE source_key = $1
                    """,
                    note.source_key,
                    note.title,
                    note.content,
                    note.doc_type,
                    note.metadata,
                    digest,
                )
                updated += 1
            else:
                unchanged += 1
            if progress is not None:
                progress(done, len(notes))
    return SeedResult(inserted=inserted, updated=updated, unchanged=unchanged)


def _differs(existing: asyncpg.Record, note: ShippedNote, digest: str) -> bool:
    wanted: dict[str, Any] = {
        "title": note.title,
        "doc_type": note.doc_type,
        "metadata": note.metadata,
        "content_hash": digest,
    }
    return any(existing[column] != value for column, value in wanted.items())


async def run_seed(
    settings: Settings, *, force: bool = False, report: Callable[[str], None] | None = None
) -> SeedResult:
    started = time.monotonic()
    notes = load_shipped_notes(settings.soap_notes_dir)

    def progress(done: int, total: int) -> None:
        if report is not None:
            report(f"seed: {done}/{total} notes ({time.monotonic() - started:.2f}s)")

    connection = await db.connect(settings)
    try:
        await db.migrate(connection)
        return await seed_notes(connection, notes, force=force, progress=progress)
    finally:
        await connection.close()
