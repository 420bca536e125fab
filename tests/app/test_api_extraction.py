"""POST /extract_structured and POST /to_fhir against the real app, PostgreSQL and fake LLM servers."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
import pytest
from conftest import make_settings, running_app

from fakes import FakeLLMServer
from medical_notes.config import PACKAGE_DATA_DIR
from medical_notes.extraction.terminology import icd10_lookup, rxnorm_lookup

NOTE = (PACKAGE_DATA_DIR / "soap_notes" / "01-type-2-diabetes.md").read_text()
SHORT_NOTE = (
    "S: 58 yo M with HTN and T2DM. Denies chest pain. Mother had breast cancer.\n"
    "Meds: metformin 500 mg PO BID; lisinopril 10 mg daily.\n"
    "O: BP 150/94, HR 80, Temp 98.6 F, Wt 200 lb. HbA1c 8.1 % (4.0-5.6) H.\n"
    "A/P: HTN not at goal. Increase lisinopril to 20 mg daily. Recheck HbA1c in 3 months.\n"
)


def evidence_ok(text: str, item: dict) -> bool:
    start, end = item["span"]
    return 0 <= start < end <= len(text)


async def test_extract_text_is_coded_traced_and_deterministic(client: httpx.AsyncClient) -> None:
    first = await client.post("/extract_structured", json={"text": SHORT_NOTE})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["cached"] is False
    assert body["provider"] == "offline"
    assert body["extraction_id"].startswith("ext-")
    assert set(body["terminology"]) == {"icd10cm", "rxnorm", "loinc", "ucum"}

    conditions = {c["text"]: c for c in body["conditions"]}
    assert conditions["HTN"]["code"]["code"] == "I10"
    assert conditions["T2DM"]["code"]["code"] == "E11.9"
    assert conditions["chest pain"]["assertion"] == "absent"
    assert "breast cancer" not in conditions  # a relative's, not the patient's
    assert body["family_history"][0]["relationship"] == "mother"
    for condition in body["conditions"]:
        assert SHORT_NOTE[condition["span"][0] : condition["span"][1]] == condition["text"]
        if condition["code"]:
            assert icd10_lookup(condition["code"]["code"]) is not None

    medications = body["medications"]
    metformin = next(m for m in medications if m["name"] == "metformin")
    assert metformin["rxnorm"]["code"] == "6809"
    assert metformin["dose"] == {"value": 500, "unit": "mg"}
    assert metformin["route"] == "oral"
    assert metformin["frequency"]["code"] == "BID"
    increased = [m for m in medications if m["name"] == "lisinopril" and m["status"] == "changed"]
    assert increased
    assert increased[0]["dose"] == {"value": 20, "unit": "mg"}
    for medication in medications:
        assert rxnorm_lookup(medication["rxnorm"]["code"]) == medication["name"]

    vitals = {v["kind"]: v for v in body["vital_signs"]}
    assert (vitals["blood_pressure"]["systolic"], vitals["blood_pressure"]["diastolic"]) == (150, 94)
    assert vitals["temperature"]["unit"] == "[degF]"
    assert vitals["temperature"]["loinc"] == "8310-5"
    assert vitals["weight"]["unit"] == "[lb_av]"
    labs = body["lab_results"]
    assert [(lab["name"], lab["loinc"], lab["value"], lab["flag"]) for lab in labs] == [
        ("HbA1c", "4548-4", 8.1, "H")
    ]
    for item in [*body["vital_signs"], *labs, *medications]:
        assert evidence_ok(SHORT_NOTE, item)

    second = await client.post("/extract_structured", json={"text": SHORT_NOTE})
    assert second.json()["cached"] is True
    assert {**second.json(), "cached": False} == body


async def test_stored_document_results_go_when_it_changes_or_is_deleted(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await client.post("/documents", json={"title": "note", "content": SHORT_NOTE})
    document_id = created.json()["id"]
    extracted = await client.post("/extract_structured", json={"document_id": document_id})
    assert extracted.status_code == 200
    extraction_id = extracted.json()["extraction_id"]
    connection = await asyncpg.connect(database_url)
    try:
        count = "SELECT count(*) FROM extractions WHERE document_id = $1"
        assert await connection.fetchval(count, document_id) == 1

        # a title change keeps the result; a content change removes it
        await client.put(f"/documents/{document_id}", json={"title": "renamed"})
        assert await connection.fetchval(count, document_id) == 1
        await client.put(f"/documents/{document_id}", json={"content": SHORT_NOTE + "\nPlan: RTC 1 mo."})
        assert await connection.fetchval(count, document_id) == 0
        gone = await client.post("/to_fhir", json={"extraction_id": extraction_id})
        assert gone.status_code == 404

        again = await client.post("/extract_structured", json={"document_id": document_id})
        assert again.json()["cached"] is False
        assert again.json()["extraction_id"] != extraction_id
        assert await connection.fetchval(count, document_id) == 1
        assert (await client.delete(f"/documents/{document_id}")).status_code == 204
        assert await connection.fetchval("SELECT count(*) FROM extractions") == 0
    finally:
        await connection.close()


async def test_to_fhir_from_an_extraction_id_text_or_document(client: httpx.AsyncClient) -> None:
    extracted = (await client.post("/extract_structured", json={"text": NOTE})).json()
    by_id = await client.post("/to_fhir", json={"extraction_id": extracted["extraction_id"]})
    assert by_id.status_code == 200, by_id.text
    body = by_id.json()
    assert body["extraction_id"] == extracted["extraction_id"]
    assert body["validation"]["valid"], body["validation"]["errors"]
    assert body["bundle"]["resourceType"] == "Bundle"
    assert body["bundle"]["type"] == "collection"
    assert body["resource_counts"]["Condition"] >= 1
    assert body["resource_counts"]["Observation"] >= 1

    by_text = await client.post("/to_fhir", json={"text": NOTE, "bundle_type": "transaction"})
    assert by_text.status_code == 200
    assert by_text.json()["bundle"]["type"] == "transaction"
    assert by_text.json()["validation"]["valid"], by_text.json()["validation"]["errors"]
    again = await client.post("/to_fhir", json={"text": NOTE, "bundle_type": "transaction"})
    assert again.json() == by_text.json()  # deterministic, fullUrls included

    created = await client.post("/documents", json={"title": "n", "content": NOTE})
    by_document = await client.post("/to_fhir", json={"document_id": created.json()["id"]})
    assert by_document.status_code == 200
    assert by_document.json()["validation"]["valid"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/extract_structured", {}, None),
        ("/extract_structured", {"text": "x", "document_id": 1}, None),
        ("/extract_structured", {"text": "   "}, "text"),
        ("/extract_structured", {"document_id": 0}, "document_id"),
        ("/extract_structured", {"text": "x", "extra": 1}, "extra"),
        ("/to_fhir", {}, None),
        ("/to_fhir", {"text": "x", "extraction_id": "ext-" + "0" * 32}, None),
        ("/to_fhir", {"extraction_id": "not-an-id"}, "extraction_id"),
        ("/to_fhir", {"text": "x", "bundle_type": "batch"}, "bundle_type"),
    ],
)
async def test_bad_input_is_422_with_field_errors(
    client: httpx.AsyncClient, path: str, body: dict, field: str | None
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    if field is not None:
        assert any(field in error["loc"] for error in detail)


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.post("/extract_structured", json={"document_id": 999})).status_code == 404
    assert (await client.post("/to_fhir", json={"document_id": 999})).status_code == 404
    missing = await client.post("/to_fhir", json={"extraction_id": "ext-" + "a" * 32})
    assert missing.status_code == 404


async def test_note_longer_than_the_limit_is_422(database_url: str, index_dir: Path) -> None:
    async with running_app(make_settings(database_url, index_dir, max_note_chars=100)) as client:
        response = await client.post("/extract_structured", json={"text": "x" * 101})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "text"]
        response = await client.post("/to_fhir", json={"text": "x" * 101})
        assert response.status_code == 422


async def test_endpoints_need_the_token_when_one_is_set(database_url: str, index_dir: Path) -> None:
    async with running_app(make_settings(database_url, index_dir, api_token="s3cret")) as client:
        for path in ("/extract_structured", "/to_fhir"):
            assert (await client.post(path, json={"text": SHORT_NOTE})).status_code == 401
        authorized = await client.post(
            "/extract_structured", json={"text": SHORT_NOTE}, headers={"Authorization": "Bearer s3cret"}
        )
        assert authorized.status_code == 200


# ---- LLM augmentation through the real SDKs and the fake servers ---------------------------------------
LLM_ANSWER = {
    "conditions": [
        # verbatim in the note, code among the table candidates: kept with its code
        {"text": "failure to thrive", "assertion": "possible", "code": "R62.7"},
        # verbatim, but the code is not a candidate for this text: kept without a code
        {"text": "poor sleep", "assertion": "present", "code": "E11.9"},
        # not in the note: dropped
        {"text": "pancreatic cancer", "assertion": "present", "code": "C25.9"},
    ],
    "medications": [
        {"text": "melatonin-free tea", "name": "unknown herb", "status": "active"},
        {"text": "atorvastatin", "name": "atorvastatin", "status": "started"},
        {
            "text": "tiotropium 18 mcg",
            "name": "tiotropium",
            "dose": {"value": 18, "unit": "ug"},
            "route": "inhaled",
            "frequency": "daily",
            "as_needed": False,
            "status": "active",
        },
    ],
}
LLM_NOTE = (
    SHORT_NOTE + "Son worries about failure to thrive; poor sleep. Uses tiotropium 18 mcg.\n"
    "Statin discussed: declined atorvastatin.\n"
)


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_llm_items_are_kept_only_with_verbatim_evidence_and_table_codes(
    database_url: str, index_dir: Path, vendor: str
) -> None:
    with FakeLLMServer(reply="```json\n" + json.dumps(LLM_ANSWER) + "\n```") as server:
        base_url = server.openai_base_url if vendor == "openai" else server.url
        settings = make_settings(
            database_url,
            index_dir,
            llm_provider=vendor,
            llm_model="fake-model",
            llm_api_key="test-key",
            llm_base_url=base_url,
            llm_max_retries=0,
        )
        async with running_app(settings) as client:
            response = await client.post("/extract_structured", json={"text": LLM_NOTE})
            assert response.status_code == 200, response.text
            body = response.json()
            prompt = json.dumps(server.requests[-1].body)
            assert "metformin" in prompt
            assert "HTN" in prompt

    assert (body["provider"], body["model"]) == (vendor, "fake-model")
    llm_conditions = {c["text"]: c for c in body["conditions"] if c["source"] == "llm"}
    assert llm_conditions["failure to thrive"]["code"]["code"] == "R62.7"
    assert llm_conditions["failure to thrive"]["assertion"] == "possible"
    assert llm_conditions["poor sleep"]["code"] is None
    assert "pancreatic cancer" not in llm_conditions
    for condition in body["conditions"]:
        assert LLM_NOTE[condition["span"][0] : condition["span"][1]] == condition["text"]
    tiotropium = [m for m in body["medications"] if m["name"] == "tiotropium"]
    assert tiotropium
    assert tiotropium[0]["rxnorm"]["code"] == "69120"
    assert not any(m["text"] == "melatonin-free tea" for m in body["medications"])
    # a drug the note declined stays out of the medications whatever the model says
    assert [m["name"] for m in body["medications_not_taken"]] == ["atorvastatin"]
    assert not any(m["name"] == "atorvastatin" for m in body["medications"])


async def test_provider_failure_falls_back_to_the_offline_result(database_url: str, index_dir: Path) -> None:
    with FakeLLMServer() as server:
        server.fail(500)
        settings = make_settings(
            database_url,
            index_dir,
            llm_provider="openai",
            llm_model="fake-model",
            llm_api_key="test-key",
            llm_base_url=server.openai_base_url,
            llm_max_retries=0,
        )
        async with running_app(settings) as client:
            response = await client.post("/extract_structured", json={"text": SHORT_NOTE})
            assert response.status_code == 200
            body = response.json()
            assert body["provider"] == "offline"
            assert any("LLM step skipped" in warning for warning in body["warnings"])
            assert {c["text"] for c in body["conditions"]} >= {"HTN", "T2DM"}
            # not cached: the next request tries the model again
            server.fail(500, times=0)
            assert (await client.post("/extract_structured", json={"text": SHORT_NOTE})).json()[
                "cached"
            ] is False
