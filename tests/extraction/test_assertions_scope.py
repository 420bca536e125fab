"""Issue 19: assertion cues before and after the finding, list scope, dated past events, guards against
words inside longer terms, shorthand with the detail that reaches the ICD-10-CM code, and one record per
concept. Short sentences of our own."""

from __future__ import annotations

import pytest

from medical_notes.extraction.pipeline import extract_structured


def _conditions(text: str) -> dict[str, tuple[str | None, str]]:
    result = extract_structured(text)
    return {c["text"]: ((c["code"] or {}).get("code"), c["assertion"]) for c in result["conditions"]}


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        ("Rash - resolved.", "Rash", "historical"),
        ("Pneumonia, unlikely.", "Pneumonia", "absent"),
        ("CHF? no", "CHF", "absent"),
        ("Appendicitis, possible.", "Appendicitis", "possible"),
        ("ACS considered, ruled out.", "ACS", "absent"),
        ("PE considered - CTA negative.", "PE", "absent"),
        ("Gout in knee - doubt.", "Gout", "absent"),
        ("Cellulitis not favored.", "Cellulitis", "absent"),
        ("Myopathy? - doubtful, CK normal.", "Myopathy", "absent"),
        ("Flu/COVID/RSV neg.", "COVID", "absent"),
        ("Psychosis considered, less likely given course.", "psychosis", "absent"),
        ("Return to ED for chest pain, SOB, or syncope.", "SOB", "hypothetical"),
        ("Return to ED for chest pain, SOB, or syncope.", "syncope", "hypothetical"),
        ("Call HF clinic for weight gain, lightheadedness, or fainting.", "lightheadedness", "hypothetical"),
        ("If insomnia or tremor recur, call clinic.", "tremor", "hypothetical"),
        ("Return precautions: chest pain, shortness of breath, fever.", "fever", "hypothetical"),
        ("No fevers, chills or rigors.", "chills", "absent"),
        ("Denies CP/SOB.", "SOB", "absent"),
        ("Date: 2026-03-01. Admitted 2019 for DKA.", "DKA", "historical"),
        ("Hx of DVT 2018, completed anticoagulation.", "DVT", "historical"),
        ("Mr. B returns for follow-up of hypertension.", "hypertension", "present"),
        # a heading of instructions with a dash or a slash, or in capitals without a colon
        ("Warning signs - come back if:\n- vomiting\n- fainting\n", "fainting", "hypothetical"),
        ("Call us / return if:\n- stiff neck\n", "stiff neck", "hypothetical"),
        ("RETURN/CALL PRECAUTIONS\n- worsening shortness of breath\n", "shortness of breath", "hypothetical"),
        # the instruction ends in a colon, names a nurse, a triage desk, or starts the sentence
        ("Return to ED / call 911: lips turning blue or new confusion.", "confusion", "hypothetical"),
        ("Call agency/MD: SOB at rest, any bleeding.", "bleeding", "hypothetical"),
        ("Tell RN immediately for calf pain or sudden SOB.", "SOB", "hypothetical"),
        ("Report bleeding through dressing.", "bleeding", "hypothetical"),
        ("Call L&D or go to triage for severe headache or blurry vision.", "blurry vision", "hypothetical"),
        ("Stable. ED for serious bleeding or black stools.", "black stools", "hypothetical"),
        ("Crisis plan: ED if no sleep for 2 nights (early mania).", "mania", "hypothetical"),
        # the instruction after the findings
        ("Fever >104 F or fever lasting more than 3 days - call.", "Fever", "hypothetical"),
        # the answer after a site, a symptom word or a test name
        ("Numbness/tingling in feet - no.", "Numbness/tingling", "absent"),
        ("Mania/hypomania sx - none.", "hypomania", "absent"),
        ("Hypoglycemia episodes since last visit: none.", "Hypoglycemia", "absent"),
        ("HIV Ag/Ab: non-reactive.", "HIV", "absent"),
        ("Pancreatitis: never.", "Pancreatitis", "absent"),
        ("Seen in the ED for chest pain yesterday.", "chest pain", "present"),
    ],
)
def test_assertion_cues_and_scope(text: str, finding: str, assertion: str) -> None:
    found = {name.lower(): value for name, value in _conditions(text).items()}
    assert found[finding.lower()][1] == assertion


def test_dated_past_events_take_the_personal_history_code() -> None:
    found = _conditions("Visit 2026-01-05. s/p MI 2015. Hx of DVT 2018. HTN since 2010.")
    assert found["MI"] == ("I25.2", "historical")
    assert found["DVT"] == ("Z86.718", "historical")
    assert found["HTN"] == ("I10", "present")


def test_family_mentions_are_not_the_patients() -> None:
    result = extract_structured("FHx: mom w/ breast ca. Dad with DM2.")
    assert result["conditions"] == []
    assert {(f["relationship"], f["condition"]) for f in result["family_history"]} == {
        ("mother", "breast ca"),
        ("father", "DM2"),
    }


@pytest.mark.parametrize(
    "text",
    [
        "PHQ-9 14, GAD-7 12.",
        "CHA2DS2-VASc 3, HAS-BLED 1. MELD 12. CURB-65 of 1. Wells score 0.",
        "ECG: 1 mm ST depression in V4-V6.",
        "No CVA tenderness.",
        "SpO2 97% on RA.",
        "PE: lungs clear.",
    ],
)
def test_words_inside_other_terms_are_not_conditions(text: str) -> None:
    assert _conditions(text) == {}


def test_effusion_is_coded_by_its_site() -> None:
    found = _conditions("Small R knee effusion. Small pleural effusion on CXR.")
    assert found["knee effusion"] == ("M25.461", "present")
    assert found["pleural effusion"] == ("J90", "present")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("L knee OA.", "M17.12"),
        ("OA of both knees.", "M17.0"),
        ("Acute on chronic systolic HF.", "I50.23"),
        ("Acute on chronic HFrEF.", "I50.23"),
        ("CKD 3b.", "N18.32"),
        ("CKD3a.", "N18.31"),
        ("Stage IIIA NSCLC.", "C34.90"),
        ("MDD in partial remission.", "F32.4"),
        ("MDD, recurrent, in partial remission.", "F33.41"),
        ("MDD, recurrent, severe without psychotic features.", "F33.2"),
        ("Alcohol use disorder, moderate, in early remission.", "F10.21"),
        ("Former smoker.", "Z87.891"),
        ("BPH w/ LUTS.", "N40.1"),
        ("LLE DVT.", "I82.402"),
        ("Prenatal visit, 32 weeks. Gestational diabetes, diet controlled.", "O24.410"),
        ("Prenatal visit, 32 weeks. GDM on insulin.", "O24.414"),
        ("Prenatal visit, GA 32w3d. Preeclampsia without severe features.", "O14.03"),
        ("Prenatal visit, GA 32w3d.", "Z3A.32"),
    ],
)
def test_shorthand_reaches_the_specific_code(text: str, code: str) -> None:
    codes = {value[0] for value in _conditions(text).values()}
    assert code in codes


@pytest.mark.parametrize(
    "abbreviation",
    [
        "HTN",
        "HLD",
        "T2DM",
        "HFrEF",
        "HFpEF",
        "CAD",
        "AFib",
        "COPD",
        "OSA",
        "GERD",
        "BPH",
        "DVT",
        "PE",
        "CVA",
        "TIA",
        "MDD",
        "GAD",
        "PTSD",
        "ADHD",
        "OA",
        "RA",
        "UTI",
        "AKI",
        "DKA",
        "GDM",
    ],
)
def test_abbreviations_are_conditions(abbreviation: str) -> None:
    found = _conditions(f"PMH: {abbreviation}.")
    assert found[abbreviation][0] is not None


def test_one_record_per_concept_with_mentions() -> None:
    text = (
        "HPI: hx CHF. Now acute on chronic systolic HF. HFrEF on GDMT. Chest pain today.\n"
        "Assessment: chest pain, likely musculoskeletal. R/o PE. PE ruled out by CTA.\n"
        "Return to ED for chest pain or SOB."
    )
    result = extract_structured(text)
    by_code = {}
    for condition in result["conditions"]:
        by_code.setdefault((condition["code"]["code"], condition["assertion"]), []).append(condition)
    heart_failure = by_code[("I50.23", "present")]
    assert len(heart_failure) == 1
    assert [m["text"] for m in heart_failure[0]["mentions"]] == [
        "CHF",
        "acute on chronic systolic HF",
        "HFrEF",
    ]
    # the patient's chest pain and the return precaution stay apart
    assert len(by_code[("R07.9", "present")]) == 1
    assert len(by_code[("R07.9", "hypothetical")]) == 1
    assert all(m["assertion"] != "hypothetical" for m in by_code[("R07.9", "present")][0]["mentions"])
    # a suspicion and its answer: one record with the last word
    assert by_code[("I26.99", "absent")][0]["mentions"][0]["assertion"] == "possible"
    assert ("I26.99", "possible") not in by_code


def test_a_problem_list_a_drug_sig_runs_into_keeps_its_problems() -> None:
    found = _conditions("PMH: paroxysmal AF on Eliquis, hypothyroidism, obesity (BMI 38).")
    assert found["hypothyroidism"] == ("E03.9", "present")
    assert found["obesity"][1] == "present"


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        (
            "Warning signs:\n- chest pain\n- fever\n\nFollow up 2 weeks. Cough improving.",
            "chest pain",
            "hypothetical",
        ),
        ("Warning signs:\n- chest pain\n- fever\n\nFollow up 2 weeks. Cough improving.", "Cough", "present"),
        ("Call if: fever, rash, vomiting.\nDiabetes stable.", "rash", "hypothetical"),
        ("Call if: fever, rash, vomiting.\nDiabetes stable.", "Diabetes", "present"),
        ("ED precautions reviewed: chest pain, syncope. Patient has asthma.", "syncope", "hypothetical"),
        ("ED precautions reviewed: chest pain, syncope. Patient has asthma.", "asthma", "present"),
        ("Call 911 if:\n* chest pain\n* seizure\nPlan: asthma stable", "seizure", "hypothetical"),
        ("Return precautions:\n  1. fever\n  2. wheezing", "wheezing", "hypothetical"),
    ],
)
def test_return_precautions_under_their_own_heading(text: str, finding: str, assertion: str) -> None:
    assert _conditions(text)[finding][1] == assertion


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        ("Aortic dissection considered - no features, mediastinum normal.", "Aortic dissection", "absent"),
        ("Aortic dissection - low suspicion, normal mediastinum.", "Aortic dissection", "absent"),
        ("Akathisia warning with aripiprazole discussed.", "Akathisia", "hypothetical"),
        ("PMH: LV thrombus (resolved); HTN", "LV thrombus", "historical"),
        ("Low TSH - subclinical hyperthyroidism vs sick euthyroid; recheck.", "sick euthyroid", "possible"),
    ],
)
def test_answered_suspicions_warnings_and_alternatives(text: str, finding: str, assertion: str) -> None:
    assert _conditions(text)[finding][1] == assertion


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Septic shock.", "R65.21"),
        ("CXR: no PTX.", "J93.9"),
        ("Return for black stools.", "K92.1"),
        ("Return for vomiting blood.", "K92.0"),
        ("Ischemic CM, CAD s/p CABG 2017.", "Z95.1"),
        ("G2P1 at 30w. Prior LTCS 2022.", "O34.211"),
        ("Acute hypoxic respiratory failure, intubated.", "J96.01"),
        ("RLL Klebsiella pneumonia.", "J15.0"),
        ("Recurrent falls.", "R29.6"),
    ],
)
def test_lexicon_findings_the_notes_state(text: str, code: str) -> None:
    assert code in {c for c, _ in _conditions(text).values()}


def test_obstetric_shorthand_outside_a_pregnancy_is_not_a_condition() -> None:
    assert _conditions("Pt left AMA yesterday, returns today with cough.").keys() == {"cough"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("A/P: 1. T2DM w/ steroid-related hyperglycemia\n2. HTN", "E11.65"),
        ("Type 2 DM - A1c 6.1% (too tight), hypoglycemia on glipizide", "E11.649"),
        ("Type 2 diabetes with diabetic CKD stage 3a", "E11.22"),
    ],
)
def test_a_diabetes_complication_in_its_clause_reaches_the_code(text: str, code: str) -> None:
    found = _conditions(text)
    assert code in {c for c, _ in found.values()}
    assert not {"R73.9", "E16.2"} & {c for c, _ in found.values()}


def test_diabetes_and_diabetes_with_a_complication_are_one_record() -> None:
    found = _conditions("DM2 w/ hyperglycemia. Also DM2 on metformin.")
    assert [c for c, _ in found.values()] == ["E11.65"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Dx: RLL CAP.\nSputum cx: Klebsiella pneumoniae, heavy growth.", "J15.0"),
        ("AECOPD triggered by RLL community-acquired pneumonia (S. pneumoniae).", "J13"),
        ("BAL: Staphylococcus aureus (MSSA). Pneumonia improving on cefazolin.", "J15.211"),
        ("Acute upper GI bleed 2/2 gastric ulcer, s/p EGD.", "K25.4"),
        ("Influenza A with pneumonia.", "J10.00"),
    ],
)
def test_organism_and_bleeding_reach_the_code(text: str, code: str) -> None:
    assert code in {c for c, _ in _conditions(text).values()}


def test_a_bleeding_ulcer_and_its_bleed_are_one_record() -> None:
    assert len(_conditions("Acute upper GI bleed 2/2 gastric ulcer, s/p EGD.")) == 1


def test_a_urine_organism_does_not_code_a_pneumonia() -> None:
    found = _conditions("Pneumonia, RLL.\nUrine cx: Klebsiella >100k.")
    assert found["Pneumonia"][0] == "J18.9"


@pytest.mark.parametrize(
    "text",
    [
        "Plan: cefepime (NOT pip-tazo given PCN anaphylaxis).",
        "ALL: sulfa (hives + throat tightness).",
        "Prenatal labs: HIV/syphilis repeat: nonreactive.",
        "Call HF clinic for weight gain >2 lb in a day.",
        "SpO2 91% on 2 L, weaned back to RA.",
        "Hi Dr. Lund, is my dose OK?",
        "Preeclampsia warning signs reviewed.",
    ],
)
def test_allergy_reactions_screens_instructions_and_words_are_not_conditions(text: str) -> None:
    assert _conditions(text) == {}


def test_a_relatives_allergy_reaction_stays_family_history() -> None:
    result = extract_structured("FHx: father - PCN allergy (hives). Mother - asthma.")
    assert any(f["relationship"] == "father" for f in result["family_history"])


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("F/u for depression and anxiety.\nA/P: 1. MDD. 2. GAD.", "F41.1"),
        (
            "Hx: Alcohol use disorder, moderate.\nA/P: Alcohol use disorder, moderate, in early remission.",
            "F10.21",
        ),
        ("Anemia noted post-op.\nA/P: Acute blood loss anemia.", "D62"),
    ],
)
def test_a_less_specific_wording_joins_the_specific_record(text: str, code: str) -> None:
    found = _conditions(text)
    codes = [c for c, _ in found.values()]
    assert code in codes
    assert not {"F41.9", "F10.20", "D64.9"} & set(codes)


@pytest.mark.parametrize(
    ("text", "relationship", "words"),
    [
        ("FHx: mother - bipolar I; sister - on lithium (?bipolar II).", "sister", "bipolar II"),
        ("FHx: father had PE tubes as a child; maternal asthma.", "mother", "asthma"),
        ("FHx: father had PE tubes as a child; maternal asthma.", "father", "PE tubes"),
        ("Her maternal aunt died by suicide.", "maternal aunt", "died by suicide"),
        ("FHx: son with WPW, s/p ablation.", "son", "WPW"),
    ],
)
def test_family_history_relatives_and_their_conditions(text: str, relationship: str, words: str) -> None:
    family = extract_structured(text)["family_history"]
    assert any(f["relationship"] == relationship and words in f["condition"] for f in family), family


@pytest.mark.parametrize(
    ("text", "finding", "code", "assertion"),
    [
        ("Lithium toxicity? no - level 0.8.", "Lithium toxicity", "T43.591A", "absent"),
        ("Lithium-induced hypothyroidism, TSH up.", "Lithium-induced hypothyroidism", "E03.2", "present"),
        ("PMH: paroxysmal AF on Eliquis.", "paroxysmal AF", "I48.0", "present"),
    ],
)
def test_a_finding_that_starts_with_a_drug_name(text: str, finding: str, code: str, assertion: str) -> None:
    assert _conditions(text)[finding] == (code, assertion)


def test_a_prn_indication_in_a_sig_is_not_a_condition() -> None:
    assert _conditions("Tylenol 650 mg q6h PRN knee pain") == {}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("2+ pitting edema bilat ankles. Edema improving.", "R60.0"),
        ("Chest pain, noncardiac. Chest pain resolved with antacid - no.", "R07.89"),
        ("Sigmoid colon cancer, s/p colectomy.", "C18.7"),
        ("Statin myopathy.", "G72.0"),
        ("Strep pharyngitis.", "J02.0"),
        ("Numbness/tingling in both feet.", "R20.2"),
        ("Nausea/vomiting x2 days.", "R11.2"),
        ("Migraine w/o aura.", "G43.009"),
        ("Chronic hepatitis C, viremic.", "B18.2"),
        ("COPD with acute exacerbation.", "J44.1"),
        ("Chronic hypoxic respiratory failure on 2 L.", "J96.11"),
        ("COVID pneumonia.", "J12.82"),
        ("HTN. Hypertensive nephrosclerosis.", "I12.9"),
        ("R knee primary OA.", "M17.11"),
        ("PMH: OA R hip.", "M16.11"),
        ("1+ pretibial edema.", "R60.0"),
        ("Edema - mild ankles.", "R60.0"),
        ("Hypothyroidism. Hashimoto hypothyroidism on levothyroxine.", "E06.3"),
    ],
)
def test_specific_wordings_and_one_record(text: str, code: str) -> None:
    codes = [c for c, a in _conditions(text).values() if a == "present"]
    assert codes == [code]


def test_a_former_smoker_in_the_social_history_is_a_condition() -> None:
    found = _conditions("SHx: former smoker, quit 2010, 30 pk-yr. Lives alone, never married.")
    assert [c for c, _ in found.values()] == ["Z87.891"]


def test_si_and_hi_are_two_findings() -> None:
    found = _conditions("MSE: no SI/HI.")
    assert found["SI"] == ("R45.851", "absent")
    assert found["HI"] == ("R45.850", "absent")


def test_flu_a_joins_influenza_a_with_pneumonia() -> None:
    found = _conditions("Influenza A with pneumonia. Flu A PCR positive.")
    assert [code for code, _ in found.values() if code.startswith(("J10", "J11"))] == ["J10.00"]


def test_a_condition_after_a_sig_that_ran_on_is_a_condition() -> None:
    found = _conditions("PMH HTN on Hyzaar 50/12.5 daily, GERD on Prilosec 20 mg daily.")
    assert found["GERD"] == ("K21.9", "present")
    found = _conditions("74M w/ pAF (on Eliquis at home), DM2, BPH, admitted with sepsis.")
    assert found["BPH"] == ("N40.0", "present")
    found = _conditions("Do not give KCl - hyperkalemia (K 5.4).")
    assert found["hyperkalemia"] == ("E87.5", "present")
    found = _conditions("Reminded: stop Lamictal and call us right away for any rash or fever.")
    assert found["rash"] == ("R21", "hypothetical")


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        ("Acute cystitis w/o hematuria.", "hematuria", "absent"),
        ("AKI, likely ATN +/- glomerulonephritis.", "glomerulonephritis", "possible"),
        ("Thrombocytopenia; DIC unlikely.", "DIC", "absent"),
        ("No evidence of ARDS.", "ARDS", "absent"),
    ],
)
def test_negation_and_possibility_shorthand(text: str, finding: str, assertion: str) -> None:
    assert _conditions(text)[finding][1] == assertion


def test_weight_loss_as_a_drugs_goal_is_not_a_finding() -> None:
    assert "wt loss" not in _conditions("Asks about phentermine for wt loss.")
    assert _conditions("Admitted for weight loss.")["weight loss"] == ("R63.4", "present")


@pytest.mark.parametrize(
    ("text", "finding", "code", "assertion"),
    [
        ("Visit 2026-02-05. PMH: R leg DVT 2019, completed Eliquis.", "DVT", "Z86.718", "historical"),
        ("Visit 2026-02-05. CHA2DS2-VASc 5 (HTN, DM, TIA 2021).", "TIA", "Z86.73", "historical"),
        ("Visit 2026-02-05. PMH: R breast ca 2008, lumpectomy + RT.", "breast ca", "Z85.3", "historical"),
        ("Visit 2026-02-05. Hx kidney stone 2022, passed.", "kidney stone", "Z87.442", "historical"),
        ("Hx DVT - no anticoagulation now.", "DVT", "Z86.718", "historical"),
        ("Cerebral edema: no sx - neuro checks q4h.", "Cerebral edema", "G93.6", "absent"),
        ("Radiation pneumonitis - no evidence at this time.", "Radiation pneumonitis", "J70.0", "absent"),
    ],
)
def test_dated_events_and_answers_after_a_colon(text: str, finding: str, code: str, assertion: str) -> None:
    assert _conditions(text)[finding] == (code, assertion)


def test_hypoglycemia_in_a_diabetic_note_is_the_diabetes_complication() -> None:
    found = _conditions("T2DM on glipizide. Hypoglycemia x2 this month.")
    assert found["Hypoglycemia"] == ("E11.649", "present")
    found = _conditions("Type 1 diabetes mellitus with hypoglycemia. Two episodes of hypoglycemia.")
    assert found["hypoglycemia"] == ("E16.2", "present")


def test_a_general_wording_joins_the_specific_one_in_either_order() -> None:
    found = _conditions("Flomax for your enlarged prostate. Dx: BPH with LUTS.")
    assert found == {"BPH with LUTS": ("N40.1", "present")}
    found = _conditions("Eczema flares in winter. PMH: atopic dermatitis.")
    assert [code for code, _ in found.values()] == ["L20.9"]


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        ("Date 2026-01-01. Past: simple febrile seizure at 18 mo.", "febrile seizure", "historical"),
        ("Date 2026-01-01. DKA admissions x2 (2019, 2022).", "DKA", "historical"),
        ("Date 2026-01-01. T1DM at age 9, on pump.", "T1DM", "present"),
    ],
)
def test_an_age_or_dated_admissions_after_the_finding_is_the_past(
    text: str, finding: str, assertion: str
) -> None:
    assert _conditions(text)[finding][1] == assertion


@pytest.mark.parametrize(
    ("text", "finding", "assertion"),
    [
        ("Non-gap metabolic acidosis.", "metabolic acidosis", "present"),
        ("Non-obstructive CAD on cath.", "CAD", "present"),
    ],
)
def test_non_negates_only_the_word_it_is_attached_to(text: str, finding: str, assertion: str) -> None:
    assert _conditions(text)[finding][1] == assertion


def test_a_spouses_condition_and_a_device_burden_of_none_are_not_the_patients() -> None:
    assert "AF" not in _conditions("Wife on Eliquis for her AF. Pt has HTN.")
    assert _conditions("AHRE/AF burden: none detected.")["AF"][1] == "absent"
    assert _conditions("HIV viral load not detected, on ART.")["HIV"][1] == "present"


def test_no_personal_or_family_history_is_absent_and_a_relatives_risk_is_no_ones() -> None:
    found = _conditions("No personal or family history of medullary thyroid cancer or MEN2.")
    assert found["MEN2"] == ("E31.22", "absent")
    result = extract_structured(
        "Son's Advil on counter - pt told not to take any (bleeding risk on warfarin)."
    )
    assert result["family_history"] == []
