"""The note type and the encounter class, from the title and the phrases one kind of note has."""

from __future__ import annotations

import pytest

from medical_notes.extraction.context import find_encounter
from medical_notes.extraction.note_type import encounter_class, note_type


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("ED PROVIDER NOTE\nDate: 2026-01-02\nCC: chest pain", "ed", "EMER"),
        ("Discharge Summary\nAdmit 2/2/2026  Discharge 2/6/2026\nHospital course: ...", "discharge", "IMP"),
        ("MICU PROGRESS NOTE - HD#4\nShock, on norepinephrine", "icu", "IMP"),
        ("Telephone encounter 3/14/26\nPt called about refill", "telephone", "VR"),
        ("Portal message from patient\nMy BP is 150/90", "telephone", "VR"),
        ("HOME HEALTH SKILLED NURSING VISIT\nVisit 4 of 9", "nursing", "HH"),
        ("RN shift note 0700-1900\nMetoprolol held for HR 52", "nursing", "IMP"),
        ("OUTPATIENT PSYCHIATRY\nNo prior inpatient admissions. MSE: calm", "psychiatry", "AMB"),
        ("PEDIATRIC HOSPITALIST PROGRESS NOTE - HD #2\n6 y/o with asthma", "pediatrics", "IMP"),
        ("Peds acute visit\n7yo with wheeze. Never intubated, no PICU stays.", "pediatrics", "AMB"),
        ("Oncology consult\nER+ breast cancer, stage IIA", "oncology", "AMB"),
        ("Cardiology consult - inpatient\nAsked to see for new AF", "consult", "IMP"),
        ("Prenatal visit\nG2P1001 at 28w2d", "prenatal", "AMB"),
        ("S: 54M f/u HTN. A/P: cont lisinopril", None, "AMB"),
        ("URGENT CARE VISIT\nDOS 01/31/2026\nDysuria x2 days", "office", "AMB"),
        (
            "DIABETES CLINIC\nVisit date: 2026-02-18\nT1DM on MDI.\nCGM ok.\nLast ER visit: DKA 2024",
            None,
            "AMB",
        ),
        (
            "Transitional care visit\nClinic: geriatrics\nMed rec.\nBP ok.\nHospital course: CHF",
            "office",
            "AMB",
        ),
    ],
)
def test_note_type_and_class(text: str, kind: str | None, code: str):
    assert note_type(text) == kind
    assert encounter_class(kind, text) == code


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Date: 2026-06-14\nED note", "2026-06-14"),
        ("DOS 3/14/26 telephone", "2026-03-14"),
        ("Seen on March 3, 2026 in clinic", "2026-03-03"),
        ("Visit date: 02/26/2026", "2026-02-26"),
        ("S: no date anywhere here", None),
    ],
)
def test_the_encounter_date_in_the_usual_spellings(text: str, date: str | None):
    assert find_encounter(text)["date"] == date
