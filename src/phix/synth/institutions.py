"""The institutions of the synthetic Putian network and their staff (the same for every seed).

Hospitals (municipal, district/county, TCM, maternity) keep their own MRN and visit-card
numbering; township health centres, community health service centres and village clinics are
the grassroots institutions that send images to the two specialist hospitals' radiologists.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from phix.synth.geography import DISTRICT_BY_CODE, localities
from phix.synth.ids import hex_token, substream
from phix.synth.names import Sex, draw_given, draw_surname

HOSPITAL_KINDS = (
    "municipal-hospital",
    "district-hospital",
    "county-hospital",
    "tcm-hospital",
    "maternity-hospital",
)
GRASSROOTS_KINDS = ("township-health-centre", "community-health-centre", "village-clinic")

KIND_DISPLAY = {
    "municipal-hospital": "市级综合医院",
    "district-hospital": "区级综合医院",
    "county-hospital": "县级综合医院",
    "tcm-hospital": "中医医院",
    "maternity-hospital": "妇幼保健院",
    "township-health-centre": "乡镇卫生院",
    "community-health-centre": "社区卫生服务中心",
    "village-clinic": "村卫生所",
}


@dataclass(frozen=True, slots=True)
class Staff:
    id: str  # Practitioner id; the PractitionerRole id is "role-" + the same suffix
    family: str
    given: str
    sex: Sex
    specialty: str  # key of clinical.SPECIALTIES


@dataclass(frozen=True, slots=True)
class Institution:
    code: str  # short ASCII code used in identifier systems and resource ids
    name: str
    kind: str
    district_code: str
    town: str
    mrn_prefix: str
    mrn_width: int
    mrn_start: int
    card_prefix: str
    card_width: int
    modalities: tuple[str, ...] = ()
    specialist: bool = False  # reads images for grassroots institutions (teleconsultation)
    parent: str | None = None  # village clinic -> its township health centre
    locality: str | None = None  # village of a village clinic
    staff: tuple[Staff, ...] = field(default=(), compare=False)

    @property
    def is_hospital(self) -> bool:
        return self.kind in HOSPITAL_KINDS

    @property
    def org_id(self) -> str:
        return f"org-{self.code}"

    @property
    def location_id(self) -> str:
        return f"loc-{self.code}"

    def mrn(self, serial: int) -> str:
        return f"{self.mrn_prefix}{self.mrn_start + serial:0{self.mrn_width}d}"

    def visit_card(self, serial: int) -> str:
        return f"{self.card_prefix}{serial * 7 + 1:0{self.card_width}d}"

    def staff_for(self, specialty: str) -> tuple[Staff, ...]:
        return tuple(s for s in self.staff if s.specialty == specialty) or self.staff


_H = "CT", "MR", "DX", "US"
# code, name, kind, district, town, mrn prefix/width/start, card prefix/width, modalities, specialist
_HOSPITALS: tuple[tuple[str, str, str, str, str, str, int, int, str, int, tuple[str, ...], bool], ...] = (
    (
        "ptsdyyy",
        "莆田市第一医院",
        "municipal-hospital",
        "350302",
        "凤凰山街道",
        "",
        10,
        1200000,
        "PT01",
        10,
        _H,
        True,
    ),
    (
        "ptxyfsyy",
        "莆田学院附属医院",
        "municipal-hospital",
        "350304",
        "镇海街道",
        "ZY",
        8,
        3100000,
        "FY",
        10,
        _H,
        True,
    ),
    (
        "ptszyy",
        "莆田市中医医院",
        "tcm-hospital",
        "350302",
        "龙桥街道",
        "Z",
        7,
        450000,
        "ZYK",
        9,
        ("CT", "DX", "US"),
        False,
    ),
    (
        "ptsfybjy",
        "莆田市妇幼保健院",
        "maternity-hospital",
        "350304",
        "拱辰街道",
        "FB",
        7,
        200000,
        "FBK",
        8,
        ("DX", "US"),
        False,
    ),
    (
        "ptsdeyy",
        "莆田市第二医院",
        "municipal-hospital",
        "350305",
        "笏石镇",
        "",
        9,
        60000000,
        "PT02",
        10,
        ("CT", "DX", "US"),
        False,
    ),
    (
        "pthjyy",
        "莆田市涵江医院",
        "district-hospital",
        "350303",
        "涵东街道",
        "HJ",
        8,
        1000000,
        "HJK",
        9,
        ("CT", "DX", "US"),
        False,
    ),
    ("xyxyy", "仙游县医院", "county-hospital", "350322", "鲤城街道", "", 8, 10500000, "XY", 10, _H, False),
    (
        "xyxzyy",
        "仙游县中医医院",
        "tcm-hospital",
        "350322",
        "鲤城街道",
        "XZ",
        7,
        300000,
        "XZK",
        8,
        ("CT", "DX", "US"),
        False,
    ),
    (
        "xyxfybjy",
        "仙游县妇幼保健院",
        "maternity-hospital",
        "350322",
        "鲤城街道",
        "XF",
        6,
        100000,
        "XFK",
        8,
        ("US",),
        False,
    ),
    (
        "ptsxyqyy",
        "莆田市秀屿区医院",
        "district-hospital",
        "350305",
        "笏石镇",
        "XY",
        7,
        500000,
        "XYQ",
        8,
        ("DX", "US"),
        False,
    ),
    (
        "ptscxqyy",
        "莆田市城厢区医院",
        "district-hospital",
        "350302",
        "霞林街道",
        "CX",
        7,
        200000,
        "CXK",
        8,
        ("DX", "US"),
        False,
    ),
    (
        "ptslcqzyy",
        "莆田市荔城区中医院",
        "tcm-hospital",
        "350304",
        "拱辰街道",
        "LZ",
        7,
        100000,
        "LZK",
        8,
        ("DX", "US"),
        False,
    ),
)
# code, town, district, name
_TOWNSHIP: tuple[tuple[str, str, str, str], ...] = (
    ("xtwzwsy", "西天尾镇", "350304", "莆田市荔城区西天尾镇卫生院"),
    ("hszxwsy", "黄石镇", "350304", "莆田市荔城区黄石镇中心卫生院"),
    ("dzzxwsy", "东庄镇", "350305", "莆田市秀屿区东庄镇中心卫生院"),
    ("zmzwsy", "忠门镇", "350305", "莆田市秀屿区忠门镇卫生院"),
    ("jkzxwsy", "江口镇", "350303", "莆田市涵江区江口镇中心卫生院"),
    ("wtzwsy", "梧塘镇", "350303", "莆田市涵江区梧塘镇卫生院"),
    ("htzwsy", "华亭镇", "350302", "莆田市城厢区华亭镇卫生院"),
    ("ftzxwsy", "枫亭镇", "350322", "仙游县枫亭镇中心卫生院"),
    ("btzxwsy", "榜头镇", "350322", "仙游县榜头镇中心卫生院"),
    ("dwzwsy", "度尾镇", "350322", "仙游县度尾镇卫生院"),
    ("jwzwsy", "郊尾镇", "350322", "仙游县郊尾镇卫生院"),
)
_COMMUNITY: tuple[tuple[str, str, str], ...] = (
    ("zhjdsqzx", "镇海街道", "350304"),
    ("gcjdsqzx", "拱辰街道", "350304"),
    ("fhsjdsqzx", "凤凰山街道", "350302"),
    ("lqjdsqzx", "龙桥街道", "350302"),
    ("hdjdsqzx", "涵东街道", "350303"),
    ("lcjdsqzx", "鲤城街道", "350322"),
)
# Township centres whose first villages run a clinic, and how many.
_VILLAGE_CLINICS: tuple[tuple[str, int], ...] = (
    ("xtwzwsy", 2),
    ("hszxwsy", 1),
    ("dzzxwsy", 2),
    ("jkzxwsy", 1),
    ("htzwsy", 1),
    ("ftzxwsy", 2),
    ("btzxwsy", 1),
    ("dwzwsy", 1),
    ("jwzwsy", 1),
)

SPECIALIST_FOR_DISTRICT = {
    "350302": "ptsdyyy",
    "350303": "ptsdyyy",
    "350304": "ptxyfsyy",
    "350305": "ptxyfsyy",
    "350322": "ptxyfsyy",
}


def _staff(code: str, kind: str, specialist: bool) -> tuple[Staff, ...]:
    rng = substream("staff", code)
    if kind == "village-clinic":
        plan = ["village-doctor"]
    elif kind in GRASSROOTS_KINDS:
        plan = ["general-practice", "general-practice", "pediatrics"]
    elif kind == "maternity-hospital":
        plan = ["obstetrics", "obstetrics", "pediatrics", "radiology"]
    else:
        plan = [
            "internal-medicine",
            "internal-medicine",
            "pediatrics",
            "surgery",
            "general-practice",
            "radiology",
        ]
        if specialist:
            plan += ["radiology", "radiology"]
    people = []
    for n, specialty in enumerate(plan, start=1):
        sex: Sex = "male" if rng.random() < 0.55 else "female"
        born = rng.randint(1960, 1995)
        people.append(Staff(f"{code}-{n}", draw_surname(rng), draw_given(rng, sex, born), sex, specialty))
    return tuple(people)


def physician_license(staff: Staff) -> str:
    """A synthetic 15-digit practising-certificate number."""
    return str(int(hex_token(16, "license", staff.id), 16))[:15].rjust(15, "1")


@functools.cache
def all_institutions() -> tuple[Institution, ...]:
    result: list[Institution] = []
    for code, name, kind, district, town, mp, mw, ms, cp, cw, mods, spec in _HOSPITALS:
        result.append(
            Institution(
                code,
                name,
                kind,
                district,
                town,
                mp,
                mw,
                ms,
                cp,
                cw,
                mods,
                spec,
                staff=_staff(code, kind, spec),
            )
        )
    for code, town, district, name in _TOWNSHIP:
        kind = "township-health-centre"
        result.append(
            Institution(
                code,
                name,
                kind,
                district,
                town,
                "W",
                7,
                1,
                "WK",
                8,
                ("DX", "US"),
                staff=_staff(code, kind, False),
            )
        )
    for code, town, district in _COMMUNITY:
        kind = "community-health-centre"
        name = (
            f"莆田市{DISTRICT_BY_CODE[district].name}{town}社区卫生服务中心"
            if district != "350322"
            else f"仙游县{town}社区卫生服务中心"
        )
        result.append(
            Institution(
                code, name, kind, district, town, "S", 7, 1, "SK", 8, ("DX",), staff=_staff(code, kind, False)
            )
        )
    by_code = {i.code: i for i in result}
    for parent_code, count in _VILLAGE_CLINICS:
        parent = by_code[parent_code]
        for k in range(count):
            village = localities(parent.town)[k]
            code = f"{parent_code[:-3]}c{k + 1}"
            kind = "village-clinic"
            result.append(
                Institution(
                    code,
                    f"{parent.town}{village}卫生所",
                    kind,
                    parent.district_code,
                    parent.town,
                    "",
                    5,
                    1,
                    "",
                    6,
                    (),
                    parent=parent_code,
                    locality=village,
                    staff=_staff(code, kind, False),
                )
            )
    return tuple(result)


@functools.cache
def by_code() -> dict[str, Institution]:
    return {i.code: i for i in all_institutions()}


def specialist_for(inst: Institution) -> Institution:
    """The specialist hospital that reads this grassroots institution's images."""
    return by_code()[SPECIALIST_FOR_DISTRICT[inst.district_code]]
