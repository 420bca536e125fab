"""Code systems and the fixed mappings from the extraction's vocabularies to FHIR R4 codes."""

from __future__ import annotations

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"

CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBSERVATION_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
SOURCE_SPAN_EXTENSION = "https://medical-notes.invalid/fhir/StructureDefinition/source-span"
SOURCE_HASH_SYSTEM = "https://medical-notes.invalid/fhir/NamingSystem/source-sha256"

# Assertion -> (clinicalStatus, verificationStatus). `absent`, `hypothetical` and `family` mentions are
# not the patient's conditions and get no Condition resource.
CONDITION_STATUS: dict[str, tuple[str, str]] = {
    "present": ("active", "confirmed"),
    "possible": ("active", "provisional"),
    "historical": ("resolved", "confirmed"),
}

# LOINC codes and displays of FHIR R4's vital-signs profiles.
VITAL_SIGNS: dict[str, tuple[str, str]] = {
    "blood_pressure": ("85354-9", "Blood pressure panel with all children optional"),
    "heart_rate": ("8867-4", "Heart rate"),
    "respiratory_rate": ("9279-1", "Respiratory rate"),
    "temperature": ("8310-5", "Body temperature"),
    "oxygen_saturation": ("2708-6", "Oxygen saturation in Arterial blood"),
    "weight": ("29463-7", "Body weight"),
    "height": ("8302-2", "Body height"),
    "bmi": ("39156-5", "Body mass index (BMI) [Ratio]"),
}
PULSE_OXIMETRY = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
# UCUM units the vital-signs profiles allow for each kind.
VITAL_UNITS: dict[str, frozenset[str]] = {
    "blood_pressure": frozenset({"mm[Hg]"}),
    "heart_rate": frozenset({"/min"}),
    "respiratory_rate": frozenset({"/min"}),
    "temperature": frozenset({"Cel", "[degF]"}),
    "oxygen_saturation": frozenset({"%"}),
    "weight": frozenset({"kg", "g", "[lb_av]", "[oz_av]"}),
    "height": frozenset({"cm", "[in_i]"}),
    "bmi": frozenset({"kg/m2"}),
}

# Medication route -> SNOMED CT route of administration.
ROUTES: dict[str, tuple[str, str]] = {
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37161004", "Sublingual route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "intravenous": ("47625008", "Intravenous route"),
    "inhaled": ("447694001", "Respiratory tract route"),
    "nebulized": ("447694001", "Respiratory tract route"),
    "topical": ("6064005", "Topical route"),
    "transdermal": ("45890007", "Transdermal route"),
    "intranasal": ("46713006", "Nasal route"),
    "ophthalmic": ("54485002", "Ophthalmic route"),
    "otic": ("10547007", "Otic route"),
    "rectal": ("37839007", "Rectal route"),
    "vaginal": ("16857009", "Vaginal route"),
}

# UCUM units of time allowed in Timing.repeat.periodUnit, with the spellings we accept.
PERIOD_UNITS: dict[str, str] = {
    "s": "s", "min": "min", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a",
    "second": "s", "minute": "min", "hour": "h", "day": "d", "week": "wk", "month": "mo", "year": "a",
}  # fmt: skip
# Timing.repeat.when (R4 event-timing) codes.
EVENT_TIMING = frozenset(
    {"MORN", "MORN.early", "MORN.late", "NOON", "AFT", "AFT.early", "AFT.late", "EVE", "EVE.early",
     "EVE.late", "NIGHT", "PHS", "HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC",
     "PCM", "PCD", "PCV"}
)  # fmt: skip

# Family relationship (as the note words it) -> v3 RoleCode.
RELATIONSHIPS: dict[str, tuple[str, str]] = {
    "mother": ("MTH", "mother"),
    "father": ("FTH", "father"),
    "parent": ("PRN", "parent"),
    "sister": ("SIS", "sister"),
    "brother": ("BRO", "brother"),
    "sibling": ("SIB", "sibling"),
    "son": ("SON", "natural son"),
    "daughter": ("DAU", "natural daughter"),
    "child": ("CHILD", "child"),
    "grandmother": ("GRMTH", "grandmother"),
    "grandfather": ("GRFTH", "grandfather"),
    "maternal grandmother": ("MGRMTH", "maternal grandmother"),
    "maternal grandfather": ("MGRFTH", "maternal grandfather"),
    "paternal grandmother": ("PGRMTH", "paternal grandmother"),
    "paternal grandfather": ("PGRFTH", "paternal grandfather"),
    "grandparent": ("GRPRN", "grandparent"),
    "aunt": ("AUNT", "aunt"),
    "uncle": ("UNCLE", "uncle"),
    "maternal aunt": ("MAUNT", "maternal aunt"),
    "paternal aunt": ("PAUNT", "paternal aunt"),
    "maternal uncle": ("MUNCLE", "maternal uncle"),
    "paternal uncle": ("PUNCLE", "paternal uncle"),
    "half-brother": ("HBRO", "half-brother"),
    "half-sister": ("HSIS", "half-sister"),
    "cousin": ("COUSN", "cousin"),
    "wife": ("WIFE", "wife"),
    "husband": ("HUSB", "husband"),
    "spouse": ("SPS", "spouse"),
    "partner": ("DOMPART", "domestic partner"),
    "twin": ("TWIN", "twin"),
}
FAMILY_MEMBER = ("FAMMEMB", "family member")

INTERPRETATION: dict[str, tuple[str, str]] = {"H": ("H", "High"), "L": ("L", "Low"), "N": ("N", "Normal")}

ADMINISTRATIVE_GENDER = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}

# ---- US Core (STU 6.1.0) -------------------------------------------------------------------------
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_CAREPLAN_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
US_CORE_DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
PATIENT_IDENTIFIER_SYSTEM = "https://medical-notes.invalid/fhir/NamingSystem/note-patient"
# The US Core profile each resource type we emit claims (MedicationStatement, FamilyMemberHistory,
# Device and DetectedIssue have none).
US_CORE_PROFILES: dict[str, str] = {
    "Patient": "us-core-patient",
    "Encounter": "us-core-encounter",
    "Condition": "us-core-condition-encounter-diagnosis",
    "MedicationRequest": "us-core-medicationrequest",
    "AllergyIntolerance": "us-core-allergyintolerance",
    "laboratory": "us-core-observation-lab",
    "Procedure": "us-core-procedure",
    "DocumentReference": "us-core-documentreference",
    "Provenance": "us-core-provenance",
    "ServiceRequest": "us-core-servicerequest",
    "CarePlan": "us-core-careplan",
}
US_CORE_VITAL_PROFILES: dict[str, str] = {
    "blood_pressure": "us-core-blood-pressure",
    "heart_rate": "us-core-heart-rate",
    "respiratory_rate": "us-core-respiratory-rate",
    "temperature": "us-core-body-temperature",
    "oxygen_saturation": "us-core-pulse-oximetry",
    "weight": "us-core-body-weight",
    "height": "us-core-body-height",
    "bmi": "us-core-bmi",
}

# Note type (extraction `encounter.note_type`) -> (LOINC document type, display) and SNOMED CT encounter
# type; None: a progress note and a generic patient encounter.
DOCUMENT_TYPES: dict[str | None, tuple[str, str]] = {
    "ed": ("34111-5", "Emergency department Note"),
    "discharge": ("18842-5", "Discharge summary"),
    "consult": ("11488-4", "Consult note"),
    "nursing": ("34746-8", "Nurse Note"),
    "telephone": ("34748-4", "Telephone encounter Note"),
    "office": ("34108-1", "Outpatient Note"),
    None: ("11506-3", "Progress note"),
}
ENCOUNTER_TYPES: dict[str | None, tuple[str, str]] = {
    "ed": ("4525004", "Emergency department patient visit"),
    "discharge": ("32485007", "Hospital admission"),
    "icu": ("32485007", "Hospital admission"),
    "consult": ("11429006", "Consultation"),
    "telephone": ("185317003", "Telephone encounter"),
    "prenatal": ("424619006", "Prenatal visit"),
    None: ("308335008", "Patient encounter procedure"),
}
ENCOUNTER_CLASSES: dict[str, str] = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "IMP": "inpatient encounter",
    "VR": "virtual",
    "HH": "home health",
}
