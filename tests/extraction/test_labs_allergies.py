"""Labs (LOINC, default units, thousands separators, targets) and allergies (verification, negation)."""

from medical_notes.extraction.pipeline import extract_structured


def _labs(text: str) -> list[tuple[str, float, str | None]]:
    return [(lab["loinc"], lab["value"], lab["unit"]) for lab in extract_structured(text)["lab_results"]]


def _allergies(text: str) -> list[tuple[str, str]]:
    return [(a["substance"], a["verification"]) for a in extract_structured(text)["allergies"]]


def test_thousands_separator_is_one_number() -> None:
    assert ("6690-2", 4820, "/uL") in _labs("Labs: WBC 4,820, Hgb 12.1")
    assert ("777-3", 245000, "/uL") in _labs("Labs: plt 245,000")
    assert ("30934-4", 2140, "pg/mL") in _labs("BNP 2,140 on admission")


def test_result_without_unit_gets_the_default_unit() -> None:
    labs = _labs("Na 137, K 4.1, Cr 1.2, INR 1.3, TSH 2.2")
    assert ("2951-2", 137, "meq/L") in labs
    assert ("2160-0", 1.2, "mg/dL") in labs
    assert ("6301-6", 1.3, "{INR}") in labs
    assert ("3016-3", 2.2, "m[IU]/L") in labs


def test_common_inpatient_labs() -> None:
    labs = _labs(
        "Troponin I 0.02. hs-troponin 18 -> 21 ng/L. D-dimer 0.38. CK 250. Lactate 1.9. PTT 31. "
        "Ferritin 14, iron 30, TIBC 450. Alk phos 90, T bili 0.5. Phos 4.4. Lipase 40. "
        "Procalcitonin 6.2. CRP 12. ESR 40. ANC 1.2. Li 0.8."
    )
    codes = {code for code, _, _ in labs}
    for code in ("10839-9", "89579-7", "48065-7", "2157-6", "2524-7", "3173-2", "2276-4", "2498-4"):
        assert code in codes
    for code in ("2500-7", "6768-6", "1975-2", "2777-1", "3040-3", "33959-8", "1988-5", "30341-2"):
        assert code in codes
    assert ("89579-7", 21, "ng/L") in labs
    assert ("48065-7", 0.38, "ug/mL{FEU}") in labs
    assert ("14334-7", 0.8, "mmol/L") in labs


def test_blood_gas_triplet() -> None:
    labs = _labs("ABG: 7.31 / 58 / 71 / HCO3 29")
    assert ("2744-1", 7.31, "[pH]") in labs
    assert ("2019-8", 58, "mm[Hg]") in labs
    assert ("2703-7", 71, "mm[Hg]") in labs
    assert ("1960-4", 29, "meq/L") in labs


def test_targets_are_not_results() -> None:
    assert _labs("A1c goal <7. Goal LDL <70.") == []


def test_dose_is_not_a_lab() -> None:
    assert not [lab for lab in _labs("Continue lithium 300 mg BID.") if lab[0] == "14334-7"]


def test_allergy_verification() -> None:
    allergies = dict(_allergies("Allergies: PCN (hives), codeine? - nausea per pt"))
    assert allergies["PCN"] == "confirmed"
    assert allergies["codeine"] == "unconfirmed"


def test_negated_reaction_is_not_an_allergy() -> None:
    assert _allergies("Allergies: no reaction to amoxicillin") == []
    assert _allergies("NKDA") == []


def test_several_allergens_in_later_sentences() -> None:
    allergies = dict(_allergies("Allergies: PCN (hives), sulfa - rash. Latex.\nHPI: cough."))
    assert set(allergies) == {"PCN", "sulfa", "Latex"}
    assert [a for a, _ in _allergies("Allergies: none to meds. Shellfish (throat itching).")] == ["Shellfish"]
    assert [a for a, _ in _allergies("Allergies: NKDA. Meds on admission: sertraline 100 mg daily.")] == []


def test_short_allergy_headings() -> None:
    assert [a for a, _ in _allergies("All: codeine (N/V)")] == ["codeine"]
    assert [a for a, _ in _allergies("ALLERGY/ADR: haloperidol - acute dystonia (2020)")] == ["haloperidol"]
    assert [a for a, _ in _allergies("ALL: NKDA. Intol: atorvastatin (myalgias).")] == ["atorvastatin"]


def test_doubtful_allergy_is_unconfirmed() -> None:
    allergies = dict(
        _allergies('Allergies: sulfa (rash). Per daughter, "maybe penicillin as a kid" - unconfirmed.')
    )
    assert allergies == {"sulfa": "confirmed", "penicillin": "unconfirmed"}
    assert dict(_allergies('ALL: PCN - "rash as a child" per mom.')) == {"PCN": "unconfirmed"}


def test_tolerated_and_not_allergy_clauses() -> None:
    text = "Allergies: penicillin - rash (has tolerated cefazolin in 2023 without reaction). Latex."
    assert [a for a, _ in _allergies(text)] == ["penicillin", "Latex"]
    assert _allergies("Allergies: NKDA. Cefdinir -> loose stools, not an allergy.") == []
    assert _allergies("Allergies: lisinopril - cough. No angioedema with lisinopril.") == [
        ("lisinopril", "confirmed")
    ]
    assert [a for a, _ in _allergies("Allergies: Morphine -> nausea and confusion.")] == ["Morphine"]


def test_allergy_stated_in_prose() -> None:
    assert [a for a, _ in _allergies("HPI: broke out in hives after Bactrim last year.")] == ["Bactrim"]
    assert _allergies("HPI: no hives after Bactrim.") == []
    assert [a for a, _ in _allergies("She is allergic to codeine; takes tramadol.")] == ["codeine"]


def _vitals(text: str) -> list[tuple[str, object]]:
    return [(v["kind"], v.get("value", v.get("systolic"))) for v in extract_structured(text)["vital_signs"]]


def test_vital_follow_up_readings() -> None:
    assert _vitals("O: BP 146/88, rpt 138/84 | HR 72") == [
        ("blood_pressure", 146),
        ("blood_pressure", 138),
        ("heart_rate", 72),
    ]
    assert ("blood_pressure", 126) in _vitals("VITALS: BP 138/74 sitting, 126/70 standing | HR 84")
    assert ("temperature", 37.8) in _vitals("Vitals: Tmax 38.9, now 37.8 | HR 104")
    assert ("oxygen_saturation", 97) in _vitals("Vitals: SpO2 93% RA -> 97% after albuterol neb")
    assert ("weight", 78) in _vitals("Vitals: Wt 81.2 kg (admit 78 kg).")


def test_vitals_without_labels() -> None:
    vitals = _vitals("VS: 132/78  P 66  T 98.1F | 98% RA")
    assert ("blood_pressure", 132) in vitals
    assert ("oxygen_saturation", 98) in vitals
    assert ("temperature", 98.4) in _vitals("VS 136/84, P 82, 98.4 F, SpO2 98%.")
    assert _vitals("Call for fever >=38.0 C or fever to 102.4 F.") == []


def test_obstetric_shorthand_is_not_a_vital() -> None:
    assert _vitals("32 yo G2P1001 @ 28w3d. Pregravid BMI 31. 3 hr 100 g GTT.") == []
    assert _vitals("Fundal height 34 cm.") == []
    assert _vitals("Home vitals: HR 76.") == [("heart_rate", 76)]


def test_lab_tables_flags_and_short_names() -> None:
    labs = _labs("| Test | Result | Ref |\n|---|---|---|\n| Mg | 1.6 | 1.7-2.4 |\n| TSH | 0.21 | 0.4-4.0 |")
    assert [(code, value) for code, value, _ in labs] == [("19123-9", 1.6), ("3016-3", 0.21)] or len(
        labs
    ) == 2
    assert ("2345-7", 131, "mg/dL") in _labs("Na 139  K 4.6  BUN 19  Cr 1.12  Glu 131")
    assert [unit for _, value, unit in _labs("CBC: Hgb 11.4 L, MCV 76 L") if value == 11.4] == ["g/dL"]
    assert _labs("Pt: 84F, here with daughter.") == []


def test_lab_prior_values_and_series() -> None:
    values = [value for _, value, _ in _labs("Cr 2.1 (baseline 1.0; peak 2.6), Glu 188\n")]
    assert values == [2.1, 1.0, 2.6, 188]
    assert [value for _, value, _ in _labs("Hgb 9.4 (pre-op 12.1), K 4.8")] == [9.4, 12.1, 4.8]
    assert [value for _, value, _ in _labs("hs-TnI 0h: 4 ng/L | 2h: 5 ng/L (delta 1)")] == [4, 5]
    assert [value for _, value, _ in _labs("last INR 2/10: 3.0.")] == [3.0]


def test_lab_thresholds_are_not_results() -> None:
    assert _labs("Hold chemo if ANC <1,000 or plt <75K next week.") == []
    assert _labs("Treatment parameters met (ANC >= 1,000, plt >= 100K).") == []
    assert _labs("Sliding scale:\n     BG 151-200 -> +1 unit") == []
    assert _labs("Full dose appropriate (age <80, wt >60 kg, Cr <1.5).") == []
    assert [value for _, value, _ in _labs("Troponin I <0.01 ng/mL")] == [0.01]


def test_gas_line_sets_arterial_or_venous() -> None:
    codes = [code for code, _, _ in _labs("VBG: pH 7.34 / pCO2 44 / HCO3 23")]
    assert codes == ["2746-6", "2021-4", "14627-4"]
    assert [code for code, _, _ in _labs("ABG 0430: pH 7.31, PaCO2 58, HCO3 29")] == [
        "2744-1",
        "2019-8",
        "1960-4",
    ]


def test_slash_list_of_names_and_values() -> None:
    labs = _labs("| Total chol / LDL / HDL / TG | 222 / 142 / 48 / 160 | |")
    assert [(code, value) for code, value, _ in labs] == [
        ("2093-3", 222),
        ("13457-7", 142),
        ("2085-9", 48),
        ("2571-8", 160),
    ]


def test_combination_allergen_is_coded_with_its_ingredients() -> None:
    allergies = extract_structured("HPI: broke out in hives after Bactrim in 2019.")["allergies"]
    assert [a["substance"] for a in allergies] == ["Bactrim"]
    assert {c["display"] for c in allergies[0]["codings"]} == {"sulfamethoxazole", "trimethoprim"}
    assert allergies[0]["category"] == "medication"
    text = "Allergies: sulfamethoxazole-trimethoprim (rash), PCN-hives"
    assert [(a["substance"], a["reaction"]) for a in extract_structured(text)["allergies"]] == [
        ("sulfamethoxazole-trimethoprim", "rash"),
        ("PCN", "hives"),
    ]
