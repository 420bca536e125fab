"""Run inside the API image (``python - < image_smoke.py``): the runtime code paths that the trimmed
virtualenv must still serve, without network or database.

- every module of /app/medical_notes imports;
- the FHIR export (fhir.resources R4B models, loaded lazily by resource type) builds and validates
  bundles, and reports a structural error for a broken one;
- the OpenAI and Anthropic providers and the OpenAI embeddings client send a request to a local fake
  server and parse its answer (the SDKs import their resource and type modules lazily);
- a FAISS index is built, searched, written and read back.

Prints one line per check and, last, ``SMOKE OK`` followed by the fhir.resources modules that were
loaded from outside R4B (none expected).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pkgutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "openai answer"},
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": "anthropic answer"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def embeddings(count: int) -> dict:
    return {
        "object": "list",
        "model": "m",
        "data": [
            {"object": "embedding", "index": i, "embedding": [1.0, float(i), 0.5]} for i in range(count)
        ],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }


class FakeLLM(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/chat/completions"):
            answer = CHAT
        elif self.path.endswith("/messages"):
            answer = MESSAGE
        elif self.path.endswith("/embeddings"):
            answer = embeddings(len(body["input"]))
        else:
            self.send_error(404)
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def check_imports() -> None:
    import medical_notes

    # __main__ runs the command line when imported
    names = [
        m.name
        for m in pkgutil.walk_packages(medical_notes.__path__, "medical_notes.")
        if not m.name.endswith(".__main__")
    ]
    for name in names:
        importlib.import_module(name)
    print(f"imports: {len(names)} medical_notes modules")


def check_fhir() -> None:
    from medical_notes.extraction import extract_structured
    from medical_notes.fhir import build_bundle
    from medical_notes.fhir.validation import validate_bundle

    note = (
        "Clinic visit 2026-03-02. 64 y/o woman.\n"
        "S: Follow-up of type 2 diabetes. Denies chest pain. Mother had breast cancer.\n"
        "Allergies: penicillin (rash).\n"
        "Meds: metformin 500 mg PO BID.\n"
        "O: BP 142/88, HR 78, T 98.6 F, SpO2 97% RA, Wt 182 lb, BMI 31.2.\n"
        "Labs: HbA1c 7.8% (H).\n"
        "A: Type 2 diabetes mellitus, above goal.\n"
        "P: Start empagliflozin 10 mg PO daily. Repeat HbA1c in 3 months. Refer to ophthalmology.\n"
    )
    extraction = extract_structured(note)
    for bundle_type in ("collection", "transaction"):
        result = build_bundle(extraction, bundle_type=bundle_type, source_text=note)
        assert result.validation.valid, result.validation.errors
    broken = dict(result.bundle, noSuchElement=True)
    errors, _ = validate_bundle(broken)
    assert any(e.startswith("FHIR R4 structure") for e in errors), errors
    print(f"fhir: valid bundles with {dict(result.resource_counts)}")


async def check_providers(base_url: str) -> None:
    from medical_notes.config import Settings
    from medical_notes.providers import create_provider
    from medical_notes.rag.embeddings import OpenAIEmbedder

    for provider_name, expected in (("openai", "openai answer"), ("anthropic", "anthropic answer")):
        settings = Settings(
            llm_provider=provider_name, llm_api_key="smoke-key", llm_base_url=base_url, llm_max_retries=0
        )
        provider = create_provider(settings)
        answer = await provider.summarize("Patient is well.")
        await provider.aclose()
        assert answer == expected, answer
        print(f"provider {provider_name}: {answer!r}")
    embedder = OpenAIEmbedder(model="m", api_key="smoke-key", base_url=base_url, timeout=10, max_retries=0)
    matrix = await embedder.embed(["a", "b"])
    await embedder.aclose()
    assert matrix.shape == (2, 3), matrix.shape
    print(f"embeddings: {matrix.shape}")


def check_faiss() -> None:
    import faiss
    import numpy as np

    vectors = np.sin(np.arange(64 * 16, dtype=np.float32)).reshape(64, 16)
    index = faiss.IndexFlatL2(16)
    index.add(vectors)
    _, ids = index.search(vectors[:3], 2)
    assert ids[:, 0].tolist() == [0, 1, 2], ids
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "index.faiss")
        faiss.write_index(index, path)
        assert faiss.read_index(path).ntotal == 64
    print(f"faiss {faiss.__version__}: search and write/read of {index.ntotal} vectors")


def main() -> None:
    check_imports()
    check_fhir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        asyncio.run(check_providers(f"http://127.0.0.1:{server.server_port}/v1"))
    finally:
        server.shutdown()
    check_faiss()
    outside = sorted(
        name
        for name in sys.modules
        if name.startswith("fhir.resources.") and not name.startswith("fhir.resources.R4B")
    )
    print("SMOKE OK", ",".join(outside) or "-")


main()
