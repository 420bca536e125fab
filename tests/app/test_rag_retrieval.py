"""Retrieval quality of the shipped guidelines with the offline (local) embeddings.

The questions are written for this test in a clinician's words rather than the guidelines' wording;
each names the guideline document that must appear among the top three passages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medical_notes.config import PACKAGE_DATA_DIR, Settings
from medical_notes.rag import IndexStore, build_index, create_embedder

DIABETES = "Type 2 Diabetes in Adults"
HYPERTENSION = "Hypertension in Adults"
LIPIDS = "Lipid Management and Statin Therapy"
SURGERY = "Post-Surgical Care and Recovery"
RESPIRATORY = "Asthma and COPD"
KIDNEY = "Chronic Kidney Disease"

QUESTIONS = [
    ("What HbA1c level confirms a diagnosis of diabetes?", DIABETES),
    ("Which glucose-lowering medicine should a newly diagnosed patient start first?", DIABETES),
    ("Diabetes with heart failure: which drug class protects heart and kidneys whatever HbA1c?", DIABETES),
    ("How often should HbA1c be checked when glucose is at goal?", DIABETES),
    ("How do I treat a low blood sugar of 60 mg/dL in a conscious patient?", DIABETES),
    ("What are the diagnostic criteria for prediabetes?", DIABETES),
    ("What blood pressure reading counts as stage 2 hypertension?", HYPERTENSION),
    ("Which fourth drug should be added for resistant hypertension?", HYPERTENSION),
    ("How much does cutting salt and following the DASH diet lower blood pressure?", HYPERTENSION),
    ("How fast should blood pressure be lowered in a hypertensive emergency?", HYPERTENSION),
    ("Which atorvastatin dose counts as high-intensity statin therapy?", LIPIDS),
    ("What LDL cholesterol goal applies to a very high risk patient?", LIPIDS),
    ("What should I do when a patient reports muscle aches on a statin?", LIPIDS),
    ("At what triglyceride level is treatment needed to prevent pancreatitis?", LIPIDS),
    ("How long should the dressing stay on after an operation and when can the patient shower?", SURGERY),
    ("How long is blood clot prophylaxis continued after hip replacement?", SURGERY),
    ("Which symptoms after discharge from surgery need urgent review?", SURGERY),
    ("What multimodal pain relief is recommended after surgery to limit opioids?", SURGERY),
    ("When should sutures be removed from the scalp?", SURGERY),
    ("How should a patient use a metered-dose inhaler correctly?", RESPIRATORY),
    ("What is the initial treatment of an acute asthma attack in adults?", RESPIRATORY),
    ("Which spirometry ratio confirms COPD?", RESPIRATORY),
    ("What oxygen saturation should be targeted during a COPD exacerbation?", RESPIRATORY),
    ("Why is SABA-only reliever treatment no longer recommended in asthma?", RESPIRATORY),
    ("Which eGFR and albuminuria values define stage G3b A2 kidney disease?", KIDNEY),
    ("When should a patient with kidney disease be referred to a nephrologist?", KIDNEY),
    ("Should an SGLT2 inhibitor be continued when eGFR drops below 20?", KIDNEY),
    ("Does finerenone help patients with type 2 diabetes and albuminuria?", KIDNEY),
]
REQUIRED_RECALL_AT_3 = 0.9


@pytest.fixture(scope="module")
async def local_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    index_dir: Path = tmp_path_factory.mktemp("faiss_db")
    settings = Settings(
        _env_file=None,
        faiss_index_dir=index_dir,
        guidelines_dir=PACKAGE_DATA_DIR / "guidelines",
        llm_provider="offline",
        embedding_provider="local",
        embedding_model="",
    )
    await build_index(settings)
    return IndexStore(settings, create_embedder(settings))


async def test_recall_at_3_with_local_embeddings(local_store: IndexStore, capsys) -> None:
    misses = []
    for question, expected_document in QUESTIONS:
        passages = await local_store.search(question, 3)
        if expected_document not in {passage.document for passage in passages}:
            misses.append((question, [passage.document for passage in passages]))
    recall = 1 - len(misses) / len(QUESTIONS)

    with capsys.disabled():
        print(f"\nrecall@3 (local embeddings, {len(QUESTIONS)} questions): {recall:.3f}")
        for question, documents in misses:
            print(f"  miss: {question!r} -> {documents}")
    assert recall >= REQUIRED_RECALL_AT_3, misses


def test_questions_cover_every_shipped_guideline() -> None:
    shipped_titles = {
        path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")
        for path in (PACKAGE_DATA_DIR / "guidelines").glob("*.md")
    }
    assert len(QUESTIONS) >= 12
    assert {document for _, document in QUESTIONS} == shipped_titles
