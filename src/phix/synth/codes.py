"""Code systems and the small coded vocabularies the generator draws from."""

from __future__ import annotations

from dataclasses import dataclass

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
CVX = "http://hl7.org/fhir/sid/cvx"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ENDPOINT_CONNECTION = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, object]:
    result: dict[str, object] = {"coding": [coding(system, code, display)]}
    if text:
        result["text"] = text
    return result


# specialty key -> (SNOMED code, display, Chinese department)
SPECIALTIES: dict[str, tuple[str, str, str]] = {
    "general-practice": ("394814009", "General practice", "全科"),
    "internal-medicine": ("419192003", "Internal medicine", "内科"),
    "pediatrics": ("394537008", "Pediatric specialty", "儿科"),
    "surgery": ("394609007", "General surgery", "外科"),
    "obstetrics": ("394585009", "Obstetrics and gynecology", "妇产科"),
    "radiology": ("394914008", "Radiology", "放射科"),
    "village-doctor": ("394814009", "General practice", "乡村医生"),
}


@dataclass(frozen=True, slots=True)
class Disease:
    icd10: str
    display: str
    chinese: str
    chronic: bool
    drugs: tuple[str, ...] = ()  # keys of DRUGS
    labs: tuple[str, ...] = ()  # keys of LABS


DISEASES: dict[str, Disease] = {
    d.icd10: d
    for d in (
        Disease(
            "I10",
            "Essential (primary) hypertension",
            "原发性高血压",
            True,
            ("amlodipine", "enalapril"),
            ("creatinine",),
        ),
        Disease(
            "E11.9",
            "Type 2 diabetes mellitus without complications",
            "2型糖尿病",
            True,
            ("metformin",),
            ("glucose", "hba1c"),
        ),
        Disease(
            "E78.5", "Hyperlipidaemia, unspecified", "高脂血症", True, ("atorvastatin",), ("cholesterol",)
        ),
        Disease(
            "J44.9",
            "Chronic obstructive pulmonary disease, unspecified",
            "慢性阻塞性肺疾病",
            True,
            ("salmeterol-fluticasone",),
        ),
        Disease(
            "N18.9",
            "Chronic kidney disease, unspecified",
            "慢性肾脏病",
            True,
            (),
            ("creatinine", "hemoglobin"),
        ),
        Disease("J45.9", "Asthma, unspecified", "支气管哮喘", True, ("salbutamol",)),
        Disease("M17.9", "Gonarthrosis, unspecified", "膝关节病", True, ("ibuprofen",)),
        Disease("K29.5", "Chronic gastritis, unspecified", "慢性胃炎", True, ("omeprazole",)),
        Disease(
            "J06.9",
            "Acute upper respiratory infection, unspecified",
            "急性上呼吸道感染",
            False,
            ("paracetamol",),
            ("wbc",),
        ),
        Disease("J18.9", "Pneumonia, unspecified", "肺炎", False, ("amoxicillin",), ("wbc", "hemoglobin")),
        Disease("J20.9", "Acute bronchitis, unspecified", "急性支气管炎", False, ("amoxicillin",)),
        Disease(
            "A09",
            "Diarrhoea and gastroenteritis of presumed infectious origin",
            "感染性腹泻",
            False,
            (),
            ("wbc",),
        ),
        Disease("R50.9", "Fever, unspecified", "发热", False, ("paracetamol",), ("wbc",)),
        Disease("S52.5", "Fracture of lower end of radius", "桡骨下端骨折", False, ("ibuprofen",)),
        Disease(
            "K35.8",
            "Acute appendicitis, other and unspecified",
            "急性阑尾炎",
            False,
            ("amoxicillin",),
            ("wbc",),
        ),
        Disease("M54.5", "Low back pain", "腰痛", False, ("ibuprofen",)),
        Disease("Z00.1", "Routine child health examination", "儿童健康检查", False),
        Disease(
            "Z34.9",
            "Supervision of normal pregnancy, unspecified",
            "正常妊娠监督",
            False,
            (),
            ("hemoglobin",),
        ),
        Disease("O80.0", "Spontaneous vertex delivery", "单胎顺产", False),
        Disease("Z38.0", "Singleton, born in hospital", "单胎活产(医院内出生)", False),
    )
}
CHRONIC = tuple(code for code, d in DISEASES.items() if d.chronic)
# Repeated codes are proportionally more frequent.
ACUTE_ADULT = ("J06.9",) * 4 + ("J20.9", "A09", "R50.9", "M54.5") * 2 + ("J18.9", "S52.5", "K35.8")
ACUTE_CHILD = ("J06.9", "J06.9", "R50.9", "A09", "J20.9", "Z00.1")


@dataclass(frozen=True, slots=True)
class Drug:
    atc: str
    display: str
    chinese: str
    dose: float
    unit: str  # UCUM
    per_day: int


DRUGS: dict[str, Drug] = {
    "amlodipine": Drug("C08CA01", "amlodipine", "苯磺酸氨氯地平片", 5, "mg", 1),
    "enalapril": Drug("C09AA02", "enalapril", "马来酸依那普利片", 10, "mg", 1),
    "metformin": Drug("A10BA02", "metformin", "盐酸二甲双胍片", 500, "mg", 3),
    "atorvastatin": Drug("C10AA05", "atorvastatin", "阿托伐他汀钙片", 20, "mg", 1),
    "salmeterol-fluticasone": Drug(
        "R03AK06", "salmeterol and fluticasone", "沙美特罗替卡松粉吸入剂", 1, "{puff}", 2
    ),
    "salbutamol": Drug("R03AC02", "salbutamol", "硫酸沙丁胺醇吸入气雾剂", 100, "ug", 3),
    "ibuprofen": Drug("M01AE01", "ibuprofen", "布洛芬缓释胶囊", 300, "mg", 2),
    "omeprazole": Drug("A02BC01", "omeprazole", "奥美拉唑肠溶胶囊", 20, "mg", 1),
    "paracetamol": Drug("N02BE01", "paracetamol", "对乙酰氨基酚片", 500, "mg", 3),
    "amoxicillin": Drug("J01CA04", "amoxicillin", "阿莫西林胶囊", 500, "mg", 3),
}


@dataclass(frozen=True, slots=True)
class Lab:
    loinc: str
    display: str
    unit: str  # UCUM
    low: float
    high: float
    decimals: int


LABS: dict[str, Lab] = {
    "glucose": Lab("14749-6", "Glucose [Moles/volume] in Serum or Plasma", "mmol/L", 3.9, 6.1, 1),
    "hba1c": Lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 6.0, 1),
    "cholesterol": Lab("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", 2.8, 5.2, 2),
    "creatinine": Lab("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 57, 111, 0),
    "hemoglobin": Lab("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 115, 160, 0),
    "wbc": Lab("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", 3.5, 9.5, 1),
}
# How far an abnormal value of a disease's lab sits above the reference range.
ABNORMAL_FACTOR = {
    "glucose": 1.5,
    "hba1c": 1.3,
    "cholesterol": 1.2,
    "creatinine": 1.6,
    "hemoglobin": 0.8,
    "wbc": 1.5,
}


@dataclass(frozen=True, slots=True)
class Vaccine:
    cvx: str
    display: str
    chinese: str
    age_days: int  # scheduled age (China's national immunization programme)
    dose: int


CHILD_SCHEDULE: tuple[Vaccine, ...] = (
    Vaccine("08", "Hep B, adolescent or pediatric", "乙肝疫苗", 0, 1),
    Vaccine("19", "BCG", "卡介苗", 0, 1),
    Vaccine("08", "Hep B, adolescent or pediatric", "乙肝疫苗", 30, 2),
    Vaccine("10", "IPV", "脊灰灭活疫苗", 60, 1),
    Vaccine("10", "IPV", "脊灰灭活疫苗", 91, 2),
    Vaccine("20", "DTaP", "百白破疫苗", 91, 1),
    Vaccine("178", "OPV bivalent", "脊灰减毒活疫苗", 121, 1),
    Vaccine("20", "DTaP", "百白破疫苗", 121, 2),
    Vaccine("20", "DTaP", "百白破疫苗", 152, 3),
    Vaccine("08", "Hep B, adolescent or pediatric", "乙肝疫苗", 182, 3),
    Vaccine("04", "M/R", "麻腮风疫苗", 243, 1),
    Vaccine("39", "Japanese Encephalitis SC", "乙脑减毒活疫苗", 243, 1),
    Vaccine("03", "MMR", "麻腮风疫苗", 548, 2),
    Vaccine("20", "DTaP", "百白破疫苗", 548, 4),
    Vaccine("83", "Hep A, ped/adol, 2 dose", "甲肝疫苗", 548, 1),
    Vaccine("39", "Japanese Encephalitis SC", "乙脑减毒活疫苗", 730, 2),
    Vaccine("178", "OPV bivalent", "脊灰减毒活疫苗", 1461, 2),
)
INFLUENZA = Vaccine("141", "Influenza, seasonal, injectable", "流感疫苗", 0, 1)
PNEUMOCOCCAL = Vaccine("33", "pneumococcal polysaccharide PPV23", "23价肺炎球菌多糖疫苗", 0, 1)

# substance (SNOMED), display, Chinese, reaction (SNOMED), reaction display
ALLERGENS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("764146007", "Penicillin", "青霉素", "medication", "271807003", "Eruption of skin"),
    ("387406002", "Sulfonamide", "磺胺类药物", "medication", "271807003", "Eruption of skin"),
    ("387207008", "Ibuprofen", "布洛芬", "medication", "247472004", "Wheal"),
    ("227037002", "Fish - dietary", "海鲜", "food", "247472004", "Wheal"),
    ("256259004", "Pollen", "花粉", "environment", "267036007", "Dyspnea"),
)

# disease -> (SNOMED procedure, display, Chinese)
PROCEDURES: dict[str, tuple[str, str, str]] = {
    "K35.8": ("80146002", "Appendectomy", "阑尾切除术"),
    "S52.5": ("15257006", "Closed reduction of fracture of radius", "桡骨骨折闭合复位术"),
    "O80.0": ("177184002", "Normal delivery procedure", "自然分娩"),
}
