"""Medication reconciliation, not-taken mentions, combination products and doses (issue 19)."""

from __future__ import annotations

import pytest

from medical_notes.extraction.pipeline import extract_structured


def meds(text: str) -> dict[str, dict]:
    return {m["name"]: m for m in extract_structured(text)["medications"]}


def not_taken(text: str) -> dict[str, str]:
    return {m["name"]: m["reason"] for m in extract_structured(text)["medications_not_taken"]}


def test_one_record_per_drug_with_every_mention() -> None:
    text = (
        "Meds: lisinopril 10 mg PO daily, metformin 500 mg BID.\n"
        "Hospital course: lisinopril was held for AKI.\n"
        "Plan: increase lisinopril to 20 mg daily. Continue metformin.\n"
    )
    result = meds(text)
    assert len(extract_structured(text)["medications"]) == 2
    lisinopril = result["lisinopril"]
    assert lisinopril["status"] == "changed"
    assert lisinopril["dose"] == {"value": 20, "unit": "mg"}
    assert [m["status"] for m in lisinopril["mentions"]] == [None, "held", "changed"]
    assert result["metformin"]["status"] == "active"


@pytest.mark.parametrize(
    ("text", "name", "status"),
    [
        ("Plan: stop atorvastatin.", "atorvastatin", "stopped"),
        ("Plan: d/c meloxicam.", "meloxicam", "stopped"),
        ("Meds: amlodipine 5 mg daily.\nPlan: hold amlodipine.", "amlodipine", "held"),
        ("Meds: metformin 1000 mg BID - held during admission.", "metformin", "held"),
        ("Meds:\n- warfarin 5 mg daily - stop\n", "warfarin", "stopped"),
        ("Metoprolol held on admission. Resume metoprolol at discharge.", "metoprolol", "active"),
        ("Plan: taper prednisone to 10 mg daily.", "prednisone", "changed"),
        ("Plan: decrease gabapentin to 300 mg TID.", "gabapentin", "changed"),
        (
            "Discharge medications:\nNEW: apixaban 5 mg BID\nSTOP: aspirin 81 mg daily\n",
            "apixaban",
            "started",
        ),
        ("Discharge medications:\nNEW: apixaban 5 mg BID\nSTOP: aspirin 81 mg daily\n", "aspirin", "stopped"),
        ("Discharge medications:\nCHANGE: furosemide 40 mg BID\n", "furosemide", "changed"),
        ("Discharge medications:\nCONTINUE: losartan 50 mg daily\n", "losartan", "active"),
    ],
)
def test_final_status(text: str, name: str, status: str) -> None:
    assert meds(text)[name]["status"] == status


def test_switch_a_to_b() -> None:
    result = meds("Meds: warfarin 5 mg daily.\nPlan: switch warfarin to apixaban 5 mg BID.")
    assert result["warfarin"]["status"] == "stopped"
    assert result["apixaban"]["status"] == "started"


def test_increase_gives_the_new_dose() -> None:
    result = meds("Meds: lisinopril 10 mg daily.\nPlan: increase lisinopril from 10 to 20 mg daily.")
    assert result["lisinopril"]["dose"] == {"value": 20, "unit": "mg"}


@pytest.mark.parametrize(
    ("text", "name", "reason"),
    [
        ("Plan: hold off on atorvastatin for now.", "atorvastatin", "refused"),
        ("Bactrim? - no, sulfa allergy.", "sulfamethoxazole / trimethoprim", "refused"),
        ("Would not start apixaban given fall risk.", "apixaban", "refused"),
        ("Patient declined sertraline.", "sertraline", "refused"),
        ("Defer metformin until next visit.", "metformin", "refused"),
        ("If BP remains high, would add amlodipine.", "amlodipine", "hypothetical"),
        ("His wife takes metoprolol.", "metoprolol", "other_person"),
        ("Mom on lithium for years.", "lithium", "other_person"),
        ("Urine culture E. coli. S: ceftriaxone, R: ampicillin.", "ampicillin", "susceptibility"),
        ("Urine culture E. coli. S: ceftriaxone, R: ampicillin.", "ceftriaxone", "susceptibility"),
        ("Nursing: do not give lorazepam.", "lorazepam", "do_not_give"),
        ("Has leftover oxycodone at home, told not to take it.", "oxycodone", "not_to_take"),
        ("No role for digoxin at present.", "digoxin", "refused"),
        ("Naltrexone discussed again - she declines.", "naltrexone", "refused"),
        ("No substitution with trazodone or diphenhydramine.", "diphenhydramine", "refused"),
        ("| Percocet | pt asked for it for knee - declined | - |", "acetaminophen / oxycodone", "refused"),
        ("Metformin 500 mg BID for prediabetes - pt declined for now.", "metformin", "refused"),
        ("ED course: ketorolac 15 mg IV. Morphine not needed.", "morphine", "refused"),
        ("Nifedipine ER would be next agent if needed.", "nifedipine", "hypothetical"),
        (
            "Warning signs reviewed (HA not relieved by Tylenol, vision change).",
            "acetaminophen",
            "hypothetical",
        ),
        ("SH: lives w/ wife (she takes warfarin).", "warfarin", "other_person"),
        ("Wife manages his pillbox; she herself takes warfarin.", "warfarin", "other_person"),
        ("Husband states he also had flu last week and took Tamiflu.", "oseltamivir", "other_person"),
        ("Call clinic, do not self-restart old Xanax tabs.", "alprazolam", "do_not_give"),
        ("Pt requested the Toradol - per MD: do NOT give ketorolac (CKD).", "ketorolac", "do_not_give"),
        (
            "BAL: Staphylococcus aureus\n   clindamycin ...... S\n   erythromycin ..... R\n",
            "clindamycin",
            "susceptibility",
        ),
    ],
)
def test_not_taken(text: str, name: str, reason: str) -> None:
    assert not_taken(text)[name] == reason
    assert name not in meds(text)


def test_allergen_order_is_not_a_medication() -> None:
    text = "Allergies: penicillin (hives).\nPlan: start Augmentin 875 mg BID for sinusitis."
    result = extract_structured(text)
    assert result["medications"] == []
    assert result["medications_not_taken"][0]["reason"] == "allergen"
    issue = result["detected_issues"][0]
    assert issue["kind"] == "drug-allergy"
    assert issue["medication"] == "amoxicillin / clavulanate"
    assert any("allergy" in warning for warning in result["warnings"])


def test_sulfa_allergy_covers_bactrim() -> None:
    result = extract_structured("Allergies: sulfa (rash).\nPlan: Bactrim DS 1 tab BID x 3 days.")
    assert result["medications"] == []
    assert result["detected_issues"][0]["allergy"] == "sulfa"


@pytest.mark.parametrize(
    ("text", "name", "brand", "ingredients"),
    [
        ("Meds: Entresto 49/51 mg BID.", "sacubitril / valsartan", "Entresto", {"1656328", "69749"}),
        ("Meds: Norco 5/325 1 tab q6h prn pain.", "acetaminophen / hydrocodone", "Norco", {"161", "5489"}),
        (
            "Meds: Zestoretic 20/12.5 daily.",
            "hydrochlorothiazide / lisinopril",
            "Zestoretic",
            {"29046", "5487"},
        ),
        ("Meds: TMP-SMX DS 1 tab BID.", "sulfamethoxazole / trimethoprim", None, {"10180", "10829"}),
        ("Meds: Symbicort 2 puffs BID.", "budesonide / formoterol", "Symbicort", {"19831", "25255"}),
    ],
)
def test_combination_products(text: str, name: str, brand: str | None, ingredients: set[str]) -> None:
    medication = extract_structured(text)["medications"][0]
    assert medication["name"] == name
    assert medication["brand"] == brand
    assert {c["code"] for c in medication["codings"]} == ingredients
    assert all(c["tty"] == "IN" for c in medication["codings"])


def test_brand_name_maps_to_ingredient() -> None:
    medication = extract_structured("Meds: Eliquis 5 mg BID.")["medications"][0]
    assert (medication["name"], medication["brand"], medication["rxnorm"]["code"]) == (
        "apixaban",
        "Eliquis",
        "1364430",
    )


@pytest.mark.parametrize(
    ("text", "dose"),
    [
        ("Meds: Norco 5/325 1 tab q6h prn pain.", {"value": 1, "unit": "{tbl}"}),
        ("Meds: ASA 81 daily.", {"value": 81, "unit": "mg"}),
        ("Meds: lisinopril 20 qd.", {"value": 20, "unit": "mg"}),
        ("Meds: Synthroid 88 daily.", {"value": 88, "unit": "ug"}),
        ("Plan: amoxicillin 90 mg/kg/day divided BID x 10 days.", {"value": 90, "unit": "mg/kg/d"}),
        ("Plan: paclitaxel 175 mg/m2 IV every 3 weeks.", {"value": 175, "unit": "mg/m2"}),
        ("Meds: Entresto 49/51 mg BID.", None),
    ],
)
def test_doses(text: str, dose: dict | None) -> None:
    assert extract_structured(text)["medications"][0]["dose"] == dose


def test_comma_list_keeps_each_drug_its_own_sig() -> None:
    result = meds("Meds: metoprolol, lisinopril 10 mg daily, aspirin 81 mg.")
    assert result["metoprolol"]["dose"] is None
    assert result["metoprolol"]["frequency"] is None
    assert result["lisinopril"]["dose"] == {"value": 10, "unit": "mg"}


def test_span_stays_within_its_clause() -> None:
    text = "Takes metformin 500 mg BID, which she tolerates well despite mild nausea after large meals."
    medication = extract_structured(text)["medications"][0]
    assert text[slice(*medication["span"])] == "metformin 500 mg BID"


def test_refusal_later_in_the_line_belongs_to_the_last_drug_before_it() -> None:
    result = meds("Plan: continue lisinopril 10 mg daily, metformin 500 mg BID - pt declined.")
    assert result["lisinopril"]["status"] == "active"
    assert "metformin" not in result


def test_patients_own_drug_when_the_pronoun_does_not_agree_with_the_relative() -> None:
    assert "metoprolol" in meds("Husband reports she takes metoprolol 25 mg BID.")


def test_ingredient_named_in_a_combination_products_sig_is_not_a_second_record() -> None:
    text = (
        "Plan:\n- Augmentin ES-600 (600 mg/42.9 mg per 5 mL), 90 mg/kg/day amoxicillin component div BID"
        " = 640 mg PO\n"
    )
    result = extract_structured(text)["medications"]
    assert [m["name"] for m in result] == ["amoxicillin / clavulanate"]
    assert result[0]["frequency"]["code"] == "BID"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ED course:\n- ASA 324 mg PO given\n", "aspirin"),
        ("ED course: ketorolac 15 mg IV x1, ondansetron 4 mg IV x1.", "ondansetron"),
        ("Plan\n- ceftriaxone 1 g IV given; ondansetron 4 mg IV; ketorolac 15 mg IV\n", "ketorolac"),
    ],
)
def test_a_dose_given_once_here_is_started_once(text: str, name: str) -> None:
    med = meds(text)[name]
    assert med["status"] == "started"
    assert med["frequency"]["code"] == "once"


def test_a_timed_nursing_administration_is_not_a_new_order() -> None:
    med = meds("Meds: metoprolol tartrate 25 mg PO BID.\n1400 HR 61 -> metoprolol tartrate 25 mg given.\n")
    assert med["metoprolol"]["status"] == "active"


def test_new_rx_marker_starts_the_drug() -> None:
    assert (
        meds("Plan:\n- new Rx: nitroglycerin 0.4 mg SL q5min PRN\n")["nitroglycerin"]["status"] == "started"
    )


@pytest.mark.parametrize(
    ("text", "name", "dose", "frequency"),
    [
        (
            "Drips: fentanyl 50 mcg/h, diltiazem gtt 10 mg/h.",
            "fentanyl",
            {"value": 50, "unit": "ug/h"},
            "continuous",
        ),
        ("Drips: diltiazem gtt 10 mg/hr.", "diltiazem", {"value": 10, "unit": "mg/h"}, "continuous"),
        ("Meds: diclofenac 1% gel 4 g topically QID.", "diclofenac", {"value": 4, "unit": "g"}, "QID"),
        ("Chemo: carboplatin AUC 2 IV weekly.", "carboplatin", {"value": 2, "unit": "{AUC}"}, "weekly"),
    ],
)
def test_rates_strengths_and_auc(text: str, name: str, dose: dict, frequency: str) -> None:
    med = meds(text)[name]
    assert med["dose"] == dose
    assert med["frequency"]["code"] == frequency


@pytest.mark.parametrize(
    ("text", "name", "route"),
    [
        ("Drips: propofol 30 mcg/kg/min, norepinephrine 0.06 mcg/kg/min.", "propofol", "intravenous"),
        ("Meds: metformin 500 mg 1 tab BID.", "metformin", "oral"),
        ("Meds: famotidine 20 mg per tube BID.", "famotidine", "oral"),
        ("Meds: Spiriva Respimat 2.5 mcg daily.", "tiotropium", "inhaled"),
        ("Meds: glargine 14 units qHS.", "insulin glargine", "subcutaneous"),
        # a note that writes routes ("PO", "IV") leaves by-mouth unsaid for an oral drug
        ("Meds: lisinopril 10 mg daily, ASA 81 mg PO daily.", "lisinopril", "oral"),
        ("Meds: ceftriaxone 1 g q24h, ASA 81 mg PO daily.", "ceftriaxone", "intravenous"),
    ],
)
def test_route_the_note_implies(text: str, name: str, route: str) -> None:
    assert meds(text)[name]["route"] == route


def test_no_presumed_route_in_a_note_that_never_writes_one() -> None:
    assert meds("Meds: lisinopril 10 mg daily.")["lisinopril"]["route"] is None


def test_cross_taper_schedule() -> None:
    text = (
        "Meds: sertraline 200 mg qAM.\n"
        "PLAN - cross-taper sertraline -> venlafaxine XR\n"
        " Wk 1: sertraline 100 mg + start venlafaxine XR 37.5 mg daily\n"
        " Wk 2: sertraline 50 mg + venlafaxine XR 75 mg\n"
        " Wk 3: stop sertraline; venlafaxine XR 75 mg\n"
    )
    result = meds(text)
    assert result["sertraline"]["status"] == "changed"
    assert result["venlafaxine"]["status"] == "started"
    assert result["venlafaxine"]["dose"] == {"value": 37.5, "unit": "mg"}


@pytest.mark.parametrize(
    ("row", "name", "status"),
    [
        ("| alprazolam | 0.25 mg TID | decrease -> 0.25 mg BID x 2 wk, then stop |", "alprazolam", "changed"),
        (
            "| gabapentin | 300 mg TID (started 2023) | taper: 300 mg BID x 1 wk, then off |",
            "gabapentin",
            "changed",
        ),
        ("| atorvastatin | 80 mg | reduce to 40 mg; not stopping - has CAD |", "atorvastatin", "changed"),
    ],
)
def test_table_row_decision_cell(row: str, name: str, status: str) -> None:
    text = "| Drug | Prior | Today's decision |\n|---|---|---|\n" + row + "\n"
    assert meds(text)[name]["status"] == status


@pytest.mark.parametrize(
    ("text", "name", "status"),
    [
        (
            "Meds: alendronate 70 mg weekly.\nPlan:\n5. Hold alendronate? -> no, continue.\n",
            "alendronate",
            "active",
        ),
        (
            "Meds: Zestoretic 20-12.5 mg daily.\nPlan:\n- Hold Zestoretic on chemo days if dehydrated - "
            "instructed; otherwise continue.\n",
            "hydrochlorothiazide / lisinopril",
            "active",
        ),
        ("Plan: stop SC heparin once apixaban begins.", "apixaban", "started"),
        (
            "- insulin gtt stopped 2/10 -> transitioned to glargine 14 units qHS\n",
            "insulin glargine",
            "started",
        ),
        (
            "Lisinopril stopped on 2/3 and, after washout, Entresto 24-26 mg BID started 2/5.",
            "lisinopril",
            "stopped",
        ),
        ("Plan:\n   - holding home lisinopril and metformin\n", "metformin", "held"),
    ],
)
def test_the_cue_belongs_to_its_own_drug(text: str, name: str, status: str) -> None:
    assert meds(text)[name]["status"] == status


def test_discharge_list_finishes_hospital_iv_drugs_it_does_not_carry() -> None:
    text = (
        "Hospital course: started ceftriaxone 1 g IV q24h + azithromycin 500 mg IV daily.\n\n"
        "Discharge meds\n"
        "  - Augmentin 875-125 mg PO BID x 5 days (NEW; replaces ceftriaxone)\n"
        "  - albuterol HFA 2 puffs q4h PRN\n"
    )
    result = meds(text)
    assert result["ceftriaxone"]["status"] == "stopped"
    assert result["azithromycin"]["status"] == "stopped"
    assert result["amoxicillin / clavulanate"]["status"] == "started"


@pytest.mark.parametrize(
    ("text", "name", "status"),
    [
        ("Overnight: Vasopressin OFF at 0200.", "vasopressin", "stopped"),
        ("Levophed weaned from 0.18 to 0.06 mcg/kg/min.", "norepinephrine", "changed"),
        ("Dexmedetomidine swapped in for propofol.", "propofol", "stopped"),
        (
            "Allergies: NKDA - no reaction to amoxicillin in past.\n"
            "Plan:\n - Amoxicillin 90 mg/kg/day div BID\n",
            "amoxicillin",
            "started",
        ),
    ],
)
def test_icu_and_plan_status(text: str, name: str, status: str) -> None:
    assert meds(text)[name]["status"] == status


@pytest.mark.parametrize(
    ("text", "name", "frequency"),
    [
        ("Plan: weekly carboplatin AUC 2 + paclitaxel 45 mg/m2 IV x 6 wk.", "paclitaxel", "weekly"),
        ("Plan: taper sertraline to 100 mg x 1 wk.", "sertraline", None),
        ("Meds: KCl 10 mEq daily.\nPlan: resume KCl once refilled.", "potassium chloride", "daily"),
        ("ED: magnesium sulfate 2 g IV x1.", "magnesium sulfate", "once"),
    ],
)
def test_frequency_words(text: str, name: str, frequency: str | None) -> None:
    found = meds(text)[name]["frequency"]
    assert (found or {}).get("code") == frequency


@pytest.mark.parametrize(
    ("text", "name", "dose", "frequency"),
    [
        (
            "- carvedilol (Coreg) 12.5 mg BID -> 25 mg PO BID",
            "carvedilol",
            {"value": 25, "unit": "mg"},
            "BID",
        ),
        ("- furosemide 40 mg PO daily -> 40 mg PO BID", "furosemide", {"value": 40, "unit": "mg"}, "BID"),
        ("| pantoprazole 40 mg | NEW | 1 tab PO BID |", "pantoprazole", {"value": 40, "unit": "mg"}, "BID"),
        ("Meds: Flovent HFA 44 mcg 2 puffs BID.", "fluticasone", {"value": 2, "unit": "{puff}"}, "BID"),
    ],
)
def test_new_dose_after_an_arrow_and_tablet_strength(
    text: str, name: str, dose: dict, frequency: str
) -> None:
    med = meds(text)[name]
    assert med["dose"] == dose
    assert med["frequency"]["code"] == frequency


@pytest.mark.parametrize(
    "text",
    [
        "All: codeine (N/V)\nMeds: lisinopril 10 mg daily.",
        "ALL: NKDA. Intol: codeine (myalgias).\nMeds: lisinopril 10 mg daily.",
        "ALLERGY/ADR: codeine - acute dystonia (2020)\nMeds: lisinopril 10 mg daily.",
    ],
)
def test_an_allergy_or_intolerance_entry_is_not_a_medication(text: str) -> None:
    assert list(meds(text)) == ["lisinopril"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Meds: PNV daily, Zofran - no longer taking (N/V resolved).", "ondansetron"),
        ("Plan: 5-FU 400 mg/m2 IV bolus D1.", "fluorouracil"),
        ("Meds: vitamin D 1000 IU daily.", "cholecalciferol"),
        ("Started duonebs q4h.", "albuterol / ipratropium"),
    ],
)
def test_more_names(text: str, name: str) -> None:
    assert name in meds(text)


def test_a_finding_or_lab_named_after_a_drug_is_not_the_drug() -> None:
    assert meds("Vitamin D deficiency - suspected, check Vitamin D 25-OH level.") == {}


def test_no_longer_taking_is_stopped() -> None:
    assert meds("Meds: Zofran - no longer taking.")["ondansetron"]["status"] == "stopped"


@pytest.mark.parametrize(
    ("text", "name", "reason"),
    [
        ("Plan: Levofloxacin - avoided given QTc.", "levofloxacin", "refused"),
        ("Plan: Spiriva - considered, not adding since sx controlled.", "tiotropium", "refused"),
        ("Plan: Atomoxetine - defer.", "atomoxetine", "refused"),
        ("Plan: Calcitriol not yet. Phos 5.1.", "calcitriol", "refused"),
        ("Plan: Ceftriaxone prophylaxis not indicated (nonvariceal).", "ceftriaxone", "refused"),
        (
            "Plan: Jardiance also discussed for renal protection - defer until next visit.",
            "empagliflozin",
            "refused",
        ),
        ("Plan: cefdinir is an option (no true allergy).", "cefdinir", "refused"),
        ("Plan: sitagliptin not useful once on a GLP-1 RA.", "sitagliptin", "refused"),
        ("Plan: Wellbutrin would help energy but avoid given seizure hx.", "bupropion", "refused"),
        ("Plan: Pt requested Xanax - would not prescribe benzodiazepines.", "alprazolam", "refused"),
        ("Plan: Trileptal discussed today - parents prefer to wait.", "oxcarbazepine", "refused"),
        ("Plan: prednisone 30 mg x5 d only if colchicine fails.", "prednisone", "hypothetical"),
        ("RESP: Lasix 20 mg IV x1 today if BP allows.", "furosemide", "hypothetical"),
        (
            "3. If seizures continue at 30 mg/kg/day -> switch to oxcarbazepine.",
            "oxcarbazepine",
            "hypothetical",
        ),
        ("Plan after RT: tamoxifen x5-10 yr.", "tamoxifen", "hypothetical"),
        ("Wants something for focus, like Adderall.", "amphetamine / dextroamphetamine", "hypothetical"),
        ("| tramadol 50 mg - label in late husband's name | DISCARD |", "tramadol", "other_person"),
        ("HLD: no statin per pt preference after simvastatin myalgias.", "simvastatin", "allergen"),
        ("(metformin stopped 10/2025 when eGFR <30 - do not resume)", "metformin", "not_to_take"),
        (
            "Leftovers: warfarin, cephalexin and tramadol bottles bagged for take-back.",
            "tramadol",
            "not_to_take",
        ),
    ],
)
def test_undecided_conditional_and_not_the_patients(text: str, name: str, reason: str) -> None:
    assert name not in meds(text)
    assert not_taken(text)[name] == reason


def test_a_hold_until_review_and_a_pending_start_stay_the_patients() -> None:
    assert (
        meds("HELD: spironolactone 25 mg daily - do not resume until PCP reviews BMP")["spironolactone"][
            "status"
        ]
        == "held"
    )
    assert "nicotine" in meds(
        "- nicotine patch 21 mg/24 h daily - has box, not started yet; agreed to start tomorrow"
    )


def test_a_nurse_giving_a_standing_order_keeps_it_active() -> None:
    mar = "| 2100 | heparin 5,000 units subQ | given, L abdomen |"
    assert meds(mar)["heparin"]["status"] == "active"
    shift = "A: Medications administered this shift\n   - amlodipine 10 mg PO daily: given 0900\n"
    assert meds(shift)["amlodipine"]["status"] == "active"
    assert meds("ED course: ceftriaxone 1 g IV given.")["ceftriaxone"]["status"] == "started"


@pytest.mark.parametrize(
    ("text", "name", "status"),
    [
        (
            "Med trials: fluoxetine (ineffective, 2015), escitalopram (sexual SE, 2019).",
            "escitalopram",
            "stopped",
        ),
        (
            "Gout flare: colchicine 0.6 mg x2 then 0.6 mg daily x 3 days - completed, resolved.",
            "colchicine",
            "stopped",
        ),
        (
            "Discharge meds:\nStopped: azithromycin (course complete); Zosyn; insulin lispro sliding scale.",
            "insulin lispro",
            "stopped",
        ),
        (
            "Narrowed 3/23: Zosyn stopped -> Augmentin 875/125 mg PO BID.",
            "amoxicillin / clavulanate",
            "started",
        ),
        (
            "Meds: ASA 81 mg daily.\nPlan:\n - Stop ASA 81 - no CAD/stent, adds bleeding risk.",
            "aspirin",
            "stopped",
        ),
        (" - furosemide (Lasix) 40 mg PO daily per d/c list; taking 20 mg tabs.", "furosemide", "active"),
    ],
)
def test_past_trials_completed_courses_labelled_stop_lists_and_discharge_abbreviation(
    text: str, name: str, status: str
) -> None:
    assert meds(text)[name]["status"] == status


def test_a_soap_heading_is_no_susceptibility_result() -> None:
    assert "metformin / sitagliptin" in meds(
        "S: 58F f/u DM2. Taking Janumet 50/1000 BID, Synthroid 88 mcg qd."
    )


def test_running_orders_in_an_icu_plan_and_new_prescriptions_under_a_plan_list() -> None:
    icu = "MICU Progress Note\nHospital day 3 in the ICU.\nA/P:\n7. Proph: heparin 5000 units SQ q8h.\n"
    assert meds(icu)["heparin"]["status"] == "active"
    ed = "ED note\nPlan / d/c:\n 1. Flomax (tamsulosin) 0.4 mg PO daily x 2 wk (MET)\n"
    assert meds(ed)["tamsulosin"]["status"] == "started"


def test_a_stop_and_call_precaution_and_a_completed_titration() -> None:
    text = "Meds: Ozempic 0.25 mg SC weekly.\nPlan: Stop Ozempic and call if severe abdominal pain."
    assert meds(text)["semaglutide"]["status"] == "active"
    assert not_taken(text)["semaglutide"] == "hypothetical"
    assert meds("Lamictal titration completed to 200 mg/d in May.")["lamotrigine"]["status"] == "active"


def test_a_verb_covers_a_plus_list_and_a_resume_planned_ahead_is_still_held() -> None:
    text = "Rx acetaminophen 650 mg q6h prn + tramadol 25 mg q8h prn severe pain x 3 d."
    assert meds(text)["tramadol"]["status"] == "started"
    held = "- losartan 50 mg PO daily: HELD per MD - BP soft post-op, resume tomorrow if SBP >120"
    assert meds(held)["losartan"]["status"] == "held"


def test_a_brand_joined_by_plus_is_a_second_drug_not_a_product() -> None:
    found = meds("Meds: metformin 1000 mg BID; Jardiance 10 mg daily.\nPlan: continue metformin + Jardiance.")
    assert set(found) == {"metformin", "empagliflozin"}


def test_a_dose_arrow_after_the_name_is_a_change() -> None:
    assert meds("- allopurinol 100 -> 200 mg qd")["allopurinol"]["status"] == "changed"
    assert meds("- omeprazole: step down 40 -> 20 mg daily x 4 wk")["omeprazole"]["status"] == "changed"


def test_a_switch_from_a_combination_to_its_ingredient_is_two_records() -> None:
    found = meds(
        "Meds: Janumet 50/1000 BID.\nPlan: d/c Janumet (no DPP-4 w/ GLP-1) -> metformin ER 1000 mg PO BID"
    )
    assert found["metformin"]["status"] == "started"
    assert found["metformin / sitagliptin"]["status"] == "stopped"
