"""The JSON of the `status` command and of GET /status: a stable summary that Ansible gathers facts from.

Keys (all always present):
  version                str    package version
  database_ok            bool   a query round trip worked
  database_error         str?   why not, when database_ok is false
  schema_version         int?   applied schema migration, null before the first start/seed
  documents              int    rows in documents (0 when the database is not readable)
  shipped_notes          int    note files in SOAP_NOTES_DIR
  shipped_notes_present  int    of those, how many have a row (matched by source_key)
  index_present          bool   index files exist in FAISS_INDEX_DIR
  index_valid            bool   they load, match each other, the guideline sources and the embedding config
  index_reason           str?   why the index is not valid
  index_chunks           int    chunks in the index
  index_documents        int    guideline documents in the index
  embedding              obj    {"provider", "model", "dim"}: recorded in the index when present,
                                otherwise what the settings ask for
"""

from __future__ import annotations

import asyncio
from typing import Any

from medical_notes import __version__, db
from medical_notes.config import Settings
from medical_notes.rag import inspect_index
from medical_notes.rag.index import configured_embedding
from medical_notes.seed import shipped_note_files


async def collect_status(settings: Settings) -> dict[str, Any]:
    shipped_keys = [path.stem for path in shipped_note_files(settings.soap_notes_dir)]
    status: dict[str, Any] = {
        "version": __version__,
        "database_ok": False,
        "database_error": None,
        "schema_version": None,
        "documents": 0,
        "shipped_notes": len(shipped_keys),
        "shipped_notes_present": 0,
    }
    try:
        connection = await db.connect(settings)
    except db.UNAVAILABLE_ERRORS as error:
        status["database_error"] = db.describe_connection_error(error)
    else:
        try:
            status["schema_version"] = await db.read_schema_version(connection)
            if status["schema_version"] is not None:
                status["documents"] = await connection.fetchval("SELECT count(*) FROM documents")
                status["shipped_notes_present"] = await connection.fetchval(
                    "SELECT count(*) FROM documents WHERE source_key = ANY($1::text[])", shipped_keys
                )
            status["database_ok"] = True
        except db.UNAVAILABLE_ERRORS as error:
            status["database_error"] = db.describe_connection_error(error)
        finally:
            await connection.close()

    # Reads and loads the index files: off the event loop when the API asks.
    index = await asyncio.to_thread(inspect_index, settings)
    status.update(
        {
            "index_present": index.present,
            "index_valid": index.valid,
            "index_reason": index.reason,
            "index_chunks": index.chunks,
            "index_documents": index.documents,
            "embedding": dict(index.embedding) if index.embedding else configured_embedding(settings),
        }
    )
    return status
