"""Chunking, embeddings, the index files on disk and the store the API serves them from.

Everything here is real: guideline files copied to a temporary directory, the local embedder, FAISS,
and files written and read on disk. No database is needed.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeLLMServer
from medical_notes.config import PACKAGE_DATA_DIR, ConfigurationError, Settings
from medical_notes.providers.base import ProviderError
from medical_notes.rag import (
    IndexStore,
    IndexUnavailable,
    build_index,
    create_embedder,
    inspect_index,
)
from medical_notes.rag.chunking import chunk_markdown, chunk_sources, count_tokens, load_sources
from medical_notes.rag.embeddings import LocalHashEmbedder, OpenAIEmbedder

SHIPPED_GUIDELINES = PACKAGE_DATA_DIR / "guidelines"
LOCAL_EMBEDDING = {"provider": "local", "model": "hashed-ngrams-v1", "dim": 1024}
GOUT_GUIDELINE = """# Gout Management

## Urate-Lowering Therapy

Allopurinol is started at a low dose and titrated to keep serum urate below 6 mg/dL, with
colchicine prophylaxis against flares during the first months.
"""


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    guidelines_dir = tmp_path / "guidelines"
    if not guidelines_dir.exists():
        shutil.copytree(SHIPPED_GUIDELINES, guidelines_dir)
    values: dict[str, object] = {
        "faiss_index_dir": tmp_path / "faiss_db",
        "guidelines_dir": guidelines_dir,
        "llm_provider": "offline",
        "embedding_provider": "local",
        "embedding_model": "",
        "embedding_api_key": None,
        "embedding_base_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def read_meta(settings: Settings) -> dict:
    return json.loads((settings.faiss_index_dir / "index_meta.json").read_text())


def file_identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


# --- chunking -------------------------------------------------------------------------------------


def test_chunks_carry_title_heading_path_and_source() -> None:
    markdown = """# Example Guideline

<!-- provenance note for maintainers, not content -->

## Diagnosis

Diagnosis needs two abnormal results.

### Thresholds

- Fasting glucose of 126 mg/dL or higher.
- HbA1c of 6.5% or higher.

## Treatment

### Empty heading

### First line

Metformin is first line.
"""
    chunks = chunk_markdown(markdown, source="example.md")

    assert [(chunk.section, chunk.text) for chunk in chunks] == [
        ("Diagnosis", "Diagnosis needs two abnormal results."),
        ("Diagnosis > Thresholds", "- Fasting glucose of 126 mg/dL or higher.\n- HbA1c of 6.5% or higher."),
        ("Treatment > First line", "Metformin is first line."),
    ]
    assert {chunk.document for chunk in chunks} == {"Example Guideline"}
    assert {chunk.source for chunk in chunks} == {"example.md"}
    assert all("provenance" not in chunk.text for chunk in chunks)
    assert chunks[0].embedding_text().startswith("Example Guideline\nDiagnosis\n")


def test_long_section_is_split_with_overlap() -> None:
    sentences = [f"Sentence number {index} talks about topic {index} in some detail." for index in range(40)]
    markdown = "# Long\n\n## Only Section\n\n" + " ".join(sentences) + "\n"

    chunks = chunk_markdown(markdown, source="long.md", max_tokens=60, overlap_tokens=15)

    assert len(chunks) > 5
    assert all(chunk.tokens <= 60 for chunk in chunks)
    assert all(chunk.section == "Only Section" for chunk in chunks)
    for previous, following in itertools.pairwise(chunks):
        last_sentence = previous.text.split(". ")[-1]
        assert following.text.startswith(last_sentence.rstrip(".")), "consecutive chunks must overlap"
    joined = " ".join(chunk.text for chunk in chunks)
    assert all(sentence in joined for sentence in sentences), "no sentence may be lost"


def test_a_sentence_longer_than_a_chunk_is_cut_at_words() -> None:
    markdown = "# Huge\n\n## Section\n\n" + " ".join(f"word{index}" for index in range(130)) + "\n"

    chunks = chunk_markdown(markdown, source="huge.md", max_tokens=50, overlap_tokens=10)

    assert all(chunk.tokens <= 50 for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks).count("word129") >= 1


def test_shipped_guidelines_cover_the_required_topics_in_sections() -> None:
    sources = load_sources(SHIPPED_GUIDELINES)
    chunks = chunk_sources(sources)

    assert len(sources) >= 6
    titles = {chunk.document for chunk in chunks}
    for topic in ("Diabetes", "Hypertension", "Lipid", "Surgical", "Asthma", "Kidney"):
        assert any(topic in title for title in titles), topic
    assert all(count_tokens(chunk.text) <= 500 for chunk in chunks)
    assert all(chunk.section and chunk.section != "Introduction" for chunk in chunks)
    per_document = {title: sum(chunk.document == title for chunk in chunks) for title in titles}
    assert min(per_document.values()) >= 6, per_document


# --- embeddings -----------------------------------------------------------------------------------


async def test_local_embeddings_are_deterministic_and_normalised() -> None:
    texts = ["Metformin is first-line therapy.", "metformin, first line THERAPY!", "Inhaler technique", ""]

    first = await LocalHashEmbedder().embed(texts)
    second = await LocalHashEmbedder().embed(texts)

    assert first.dtype == np.float32
    assert first.shape == (4, 1024)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first[:3], axis=1), 1.0, rtol=1e-5)
    assert not np.any(np.isnan(first))
    assert float(first[0] @ first[1]) > 0.99, "punctuation and case must not matter"
    assert float(first[0] @ first[2]) < 0.2


def test_embedder_configuration_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="supports only EMBEDDING_MODEL=hashed-ngrams-v1"):
        create_embedder(make_settings(tmp_path, embedding_model="all-MiniLM-L6-v2"))
    with pytest.raises(ConfigurationError, match="needs EMBEDDING_API_KEY"):
        create_embedder(make_settings(tmp_path, embedding_provider="openai"))
    embedder = create_embedder(make_settings(tmp_path, embedding_provider="openai", embedding_api_key="k"))
    assert (embedder.provider, embedder.model, embedder.dim) == ("openai", "text-embedding-3-small", 0)


# --- building and inspecting the index -------------------------------------------------------------


async def test_build_writes_both_files_then_is_a_no_op(settings: Settings) -> None:
    messages: list[str] = []

    result = await build_index(settings, progress=messages.append)

    assert result.built
    assert result.documents == len(load_sources(settings.guidelines_dir))
    assert result.chunks == len(chunk_sources(load_sources(settings.guidelines_dir)))
    assert result.reason == "no index yet"
    assert any(f"embedded {result.chunks}/{result.chunks} chunks" in message for message in messages)
    index_dir = settings.faiss_index_dir
    assert sorted(path.name for path in index_dir.iterdir() if not path.name.startswith(".index.lock")) == [
        "index.faiss",
        "index_meta.json",
    ], "no temporary files may be left behind"
    meta = read_meta(settings)
    assert meta["embedding"] == LOCAL_EMBEDDING
    assert len(meta["chunks"]) == result.chunks
    assert meta["built_at"].endswith("+00:00")
    assert len(meta["sources_checksum"]) == 64

    status = inspect_index(settings)
    assert (status.present, status.valid, status.reason) == (True, True, None)
    assert (status.chunks, status.documents) == (result.chunks, result.documents)
    assert status.embedding == LOCAL_EMBEDDING
    assert status.sources_checksum == meta["sources_checksum"]

    before = [file_identity(index_dir / name) for name in ("index.faiss", "index_meta.json")]
    again = await build_index(settings)
    assert (again.built, again.reason, again.chunks) == (False, "index is up to date", result.chunks)
    assert [file_identity(index_dir / name) for name in ("index.faiss", "index_meta.json")] == before


async def test_force_rebuilds_a_current_index(settings: Settings) -> None:
    await build_index(settings)
    first_build = read_meta(settings)["build_id"]

    result = await build_index(settings, force=True)

    assert (result.built, result.reason) == (True, "forced rebuild")
    assert read_meta(settings)["build_id"] != first_build
    assert inspect_index(settings).valid


async def test_changed_sources_invalidate_the_index_until_rebuilt(settings: Settings) -> None:
    await build_index(settings)
    (settings.guidelines_dir / "gout.md").write_text(GOUT_GUIDELINE)

    status = inspect_index(settings)
    assert (status.present, status.valid) == (True, False)
    assert "changed since the index was built" in status.reason

    result = await build_index(settings)
    assert result.built
    assert result.reason == "guideline sources changed"
    assert inspect_index(settings).valid
    assert inspect_index(settings).documents == status.documents + 1


def test_missing_index_is_reported_not_raised(settings: Settings) -> None:
    status = inspect_index(settings)

    assert (status.present, status.valid, status.chunks) == (False, False, 0)
    assert "index not built" in status.reason
    assert "index.faiss missing" in status.reason


@pytest.mark.parametrize(
    ("damage", "expected_reason"),
    [
        (lambda d: (d / "index.faiss").write_bytes(b"not a faiss index"), "does not match index_meta.json"),
        (lambda d: (d / "index_meta.json").write_text("{truncated"), "unreadable"),
        (lambda d: (d / "index_meta.json").write_text('{"format_version": 1}'), "incomplete"),
        (lambda d: (d / "index_meta.json").unlink(), "index_meta.json missing"),
        (lambda d: (d / "index.faiss").unlink(), "index.faiss missing"),
    ],
    ids=["corrupt-index", "corrupt-meta", "incomplete-meta", "missing-meta", "missing-index"],
)
async def test_damaged_files_are_invalid_with_a_reason_and_rebuilt(
    settings: Settings, damage, expected_reason: str
) -> None:
    await build_index(settings)
    damage(settings.faiss_index_dir)

    status = inspect_index(settings)

    assert not status.valid
    assert expected_reason in status.reason
    with pytest.raises(IndexUnavailable, match=expected_reason.split()[0]):
        await IndexStore(settings, create_embedder(settings)).search("metformin", 3)

    repaired = await build_index(settings)
    assert repaired.built
    assert repaired.reason.startswith("previous index unusable (")
    assert inspect_index(settings).valid


async def test_embedding_configuration_mismatch_is_unavailable(tmp_path: Path) -> None:
    local_settings = make_settings(tmp_path)
    await build_index(local_settings)
    openai_settings = make_settings(
        tmp_path,
        embedding_provider="openai",
        embedding_api_key="sk-test-not-used",
        embedding_base_url="http://127.0.0.1:9/v1",
    )
    expected = (
        "index built with local/hashed-ngrams-v1/1024, service configured for openai/text-embedding-3-small"
    )

    status = inspect_index(openai_settings)
    assert (status.present, status.valid) == (True, False)
    assert status.reason.startswith(expected)
    assert status.embedding == LOCAL_EMBEDDING

    store = IndexStore(openai_settings, create_embedder(openai_settings))
    assert store.status().reason.startswith(expected)
    with pytest.raises(IndexUnavailable) as raised:
        await store.search("metformin dose", 3)
    assert raised.value.reason.startswith(expected)
    assert "sk-test" not in raised.value.reason


async def test_failed_build_leaves_the_previous_index_in_place(tmp_path: Path) -> None:
    local_settings = make_settings(tmp_path)
    await build_index(local_settings)
    before = {path.name: path.read_bytes() for path in local_settings.faiss_index_dir.iterdir()}
    unreachable = OpenAIEmbedder(
        model="text-embedding-3-small",
        api_key="sk-test-secret",
        base_url="http://127.0.0.1:9/v1",
        timeout=2,
        max_retries=0,
    )

    with pytest.raises(ProviderError) as raised:
        await build_index(local_settings, force=True, embedder=unreachable)
    await unreachable.aclose()

    assert raised.value.status_code == 503
    assert "sk-test-secret" not in str(raised.value)
    after = {path.name: path.read_bytes() for path in local_settings.faiss_index_dir.iterdir()}
    assert after == before
    assert inspect_index(local_settings).valid


async def test_empty_guidelines_directory_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "guidelines").mkdir()
    with pytest.raises(ConfigurationError, match="no guideline documents"):
        await build_index(make_settings(tmp_path))


# --- the store ----------------------------------------------------------------------------------


async def test_store_without_index_raises_unavailable_with_reason(settings: Settings) -> None:
    store = IndexStore(settings, create_embedder(settings))

    assert not store.status().valid
    with pytest.raises(IndexUnavailable, match="index not built"):
        await store.search("asthma", 3)


async def test_store_serves_a_rebuilt_index_without_restart(settings: Settings) -> None:
    store = IndexStore(settings, create_embedder(settings))
    with pytest.raises(IndexUnavailable):
        await store.search("allopurinol urate", 3)

    await build_index(settings)
    first = store.status()
    assert first.valid
    passages = await store.search("allopurinol urate", 3)
    assert "Gout Management" not in {passage.document for passage in passages}

    (settings.guidelines_dir / "gout.md").write_text(GOUT_GUIDELINE)
    assert not store.status().valid, "a store must notice that its sources changed"
    await build_index(settings)

    second = store.status()
    assert second.valid
    assert second.documents == first.documents + 1
    passages = await store.search("allopurinol urate", 3)
    assert passages[0].document == "Gout Management"
    assert passages[0].section == "Urate-Lowering Therapy"


async def test_store_keeps_serving_while_a_rebuild_is_half_way(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    await build_index(settings)
    store = IndexStore(settings, create_embedder(settings))
    assert store.status().valid

    other = make_settings(tmp_path / "other")
    (other.guidelines_dir / "gout.md").write_text(GOUT_GUIDELINE)
    await build_index(other)
    # The new index file has been renamed into place, its metadata not yet.
    shutil.copy(other.faiss_index_dir / "index.faiss", settings.faiss_index_dir / "index.faiss")

    assert store.status().valid
    assert (await store.search("inhaler technique", 3))[0].document == "Asthma and COPD"
    assert not inspect_index(settings).valid

    shutil.copy(other.faiss_index_dir / "index_meta.json", settings.faiss_index_dir / "index_meta.json")
    shutil.copy(other.guidelines_dir / "gout.md", settings.guidelines_dir / "gout.md")
    assert store.status().valid
    assert (await store.search("allopurinol urate", 1))[0].document == "Gout Management"


async def test_search_numbers_passages_from_one_by_score(settings: Settings) -> None:
    await build_index(settings)
    store = IndexStore(settings, create_embedder(settings))

    passages = await store.search("Which atorvastatin dose gives high-intensity statin therapy?", 5)

    assert [passage.id for passage in passages] == [1, 2, 3, 4, 5]
    scores = [passage.score for passage in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)
    assert passages[0].document == "Lipid Management and Statin Therapy"
    assert passages[0].section == "Statin Intensity"
    assert "atorvastatin 40-80 mg" in passages[0].text
    assert len(await store.search("statin", 1000)) == store.status().chunks


# --- the OpenAI embedder against the local fake OpenAI server ----------------------------------------


def openai_settings(tmp_path: Path, server: FakeLLMServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "embedding_provider": "openai",
        "embedding_api_key": "sk-test-embedding-key",
        "embedding_base_url": server.openai_base_url,
        "llm_max_retries": 0,
        "llm_timeout": 5.0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def test_openai_embeddings_build_and_serve_the_index(tmp_path: Path) -> None:
    with FakeLLMServer(embedding_dim=64) as server:
        settings = openai_settings(tmp_path, server)

        result = await build_index(settings)

        assert (result.built, result.reason) == (True, "no index yet")
        assert read_meta(settings)["embedding"] == {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "dim": 64,
        }
        calls = server.requests_to("/v1/embeddings")
        assert sum(len(call.body["input"]) for call in calls) == result.chunks
        assert all(call.headers["authorization"] == "Bearer sk-test-embedding-key" for call in calls)
        assert {call.body["model"] for call in calls} == {"text-embedding-3-small"}
        assert "Metformin remains the usual first glucose-lowering medicine" in json.dumps(
            [call.body["input"] for call in calls]
        )

        server.reset()
        assert not (await build_index(settings)).built
        assert server.requests_to("/v1/embeddings") == [], "an up-to-date index needs no embedding calls"

        embedder = create_embedder(settings)
        try:
            store = IndexStore(settings, embedder)
            passages = await store.search("resistant hypertension spironolactone", 3)
            assert [passage.id for passage in passages] == [1, 2, 3]
            assert server.requests_to("/v1/embeddings")[-1].body["input"] == [
                "resistant hypertension spironolactone"
            ]
            assert store.status().valid
            assert store.status().embedding["dim"] == 64
        finally:
            await embedder.aclose()

    local = inspect_index(make_settings(tmp_path))
    assert not local.valid
    assert local.reason.startswith(
        "index built with openai/text-embedding-3-small/64, "
        "service configured for local/hashed-ngrams-v1/1024"
    )
    rebuilt = await build_index(make_settings(tmp_path))
    assert (rebuilt.built, rebuilt.reason) == (True, "embedding configuration changed")


async def test_openai_dimension_change_is_detected_at_the_first_answer(tmp_path: Path) -> None:
    with FakeLLMServer(embedding_dim=64) as server:
        await build_index(openai_settings(tmp_path, server))
    with FakeLLMServer(embedding_dim=32) as other_model_server:
        settings = openai_settings(tmp_path, other_model_server)
        embedder = create_embedder(settings)
        try:
            store = IndexStore(settings, embedder)
            assert store.status().valid, "the dimension of a remote model is unknown before it answers"
            with pytest.raises(IndexUnavailable) as raised:
                await store.search("asthma inhaler", 3)
            assert raised.value.reason.startswith(
                "index built with openai/text-embedding-3-small/64, "
                "service configured for openai/text-embedding-3-small/32"
            )
            assert not store.status().valid
        finally:
            await embedder.aclose()


@pytest.mark.parametrize(
    ("status", "expected_code", "expected_message"),
    [(401, 502, "rejected the API key"), (429, 503, "rate limit"), (500, 502, "HTTP 500")],
)
async def test_openai_embedding_errors_become_provider_errors(
    tmp_path: Path, status: int, expected_code: int, expected_message: str
) -> None:
    with FakeLLMServer(embedding_dim=16) as server:
        settings = openai_settings(tmp_path, server)
        await build_index(settings)
        embedder = create_embedder(settings)
        try:
            server.fail(status)
            with pytest.raises(ProviderError) as raised:
                await IndexStore(settings, embedder).search("metformin", 3)
        finally:
            await embedder.aclose()

    assert raised.value.status_code == expected_code
    assert expected_message in str(raised.value)
    assert "sk-test-embedding-key" not in str(raised.value)


async def test_openai_embedding_timeout_is_a_504(tmp_path: Path) -> None:
    with FakeLLMServer(embedding_dim=16) as server:
        await build_index(openai_settings(tmp_path, server))
        settings = openai_settings(tmp_path, server, llm_timeout=0.3)
        embedder = create_embedder(settings)
        try:
            server.stall(5)
            with pytest.raises(ProviderError) as raised:
                await IndexStore(settings, embedder).search("metformin", 3)
        finally:
            await embedder.aclose()

    assert (raised.value.status_code, str(raised.value)) == (504, "embedding service timed out")
