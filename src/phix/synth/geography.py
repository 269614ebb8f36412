"""Putian's districts, towns and streets; villages and communities are synthetic but stable."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from phix.synth.ids import substream
from phix.synth.names import Weighted


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str
    weight: float  # share of the population
    towns: tuple[str, ...]  # 街道 (urban streets) and 镇/乡 (towns)


DISTRICTS: tuple[District, ...] = (
    District(
        "350302",
        "城厢区",
        0.17,
        ("凤凰山街道", "龙桥街道", "霞林街道", "常太镇", "华亭镇", "灵川镇", "东海镇"),
    ),
    District(
        "350303",
        "涵江区",
        0.17,
        (
            "涵东街道",
            "涵西街道",
            "三江口镇",
            "白塘镇",
            "国欢镇",
            "梧塘镇",
            "江口镇",
            "萩芦镇",
            "白沙镇",
            "庄边镇",
            "新县镇",
            "大洋乡",
        ),
    ),
    District("350304", "荔城区", 0.18, ("镇海街道", "拱辰街道", "西天尾镇", "黄石镇", "新度镇", "北高镇")),
    District(
        "350305",
        "秀屿区",
        0.20,
        ("笏石镇", "东庄镇", "忠门镇", "东峤镇", "埭头镇", "平海镇", "南日镇", "月塘镇"),
    ),
    District(
        "350322",
        "仙游县",
        0.28,
        (
            "鲤城街道",
            "鲤南镇",
            "榜头镇",
            "郊尾镇",
            "枫亭镇",
            "盖尾镇",
            "度尾镇",
            "赖店镇",
            "大济镇",
            "龙华镇",
            "钟山镇",
            "游洋镇",
            "园庄镇",
            "书峰乡",
            "石苍乡",
            "社硎乡",
            "菜溪乡",
            "西苑乡",
        ),
    ),
)
DISTRICT_BY_CODE = {d.code: d for d in DISTRICTS}
DISTRICT_DRAW = Weighted([d.code for d in DISTRICTS], [d.weight for d in DISTRICTS])

_VILLAGE_HEAD = "东西南北上下前后新大小中"
_VILLAGE_BODY = "山洋溪埔坑厝头尾林湖亭塘田坂岭桥园兜港"
_COMMUNITY = (
    "学园",
    "文献",
    "荔园",
    "东园",
    "梅峰",
    "延寿",
    "凤山",
    "霞林",
    "天妃",
    "胜利",
    "八一",
    "兴安",
    "宫下",
    "沟头",
    "建设",
)
_STREETS = (
    "学园南街",
    "文献路",
    "荔华东大道",
    "梅园路",
    "东圳路",
    "胜利路",
    "延寿街",
    "天九湾路",
    "八二一街",
    "县巷",
)


def is_urban(town: str) -> bool:
    return town.endswith("街道")


@functools.cache
def localities(town: str) -> tuple[str, ...]:
    """The villages (村) of a town or the communities (社区) of a street, fixed for all seeds."""
    rng = substream("geography", town)
    if is_urban(town):
        picks = rng.sample(_COMMUNITY, 6)
        return tuple(f"{p}社区" for p in picks)
    names: list[str] = []
    while len(names) < rng.randint(8, 14):
        name = rng.choice(_VILLAGE_HEAD) + rng.choice(_VILLAGE_BODY) + "村"
        if name not in names:
            names.append(name)
    return tuple(names)


@dataclass(frozen=True, slots=True)
class Address:
    district_code: str
    town: str
    locality: str  # village or community
    line: str  # house number, street and building

    @property
    def district(self) -> str:
        return DISTRICT_BY_CODE[self.district_code].name

    @property
    def text(self) -> str:
        return f"福建省莆田市{self.district}{self.town}{self.locality}{self.line}"

    def fhir(self) -> dict[str, object]:
        return {
            "use": "home",
            "text": self.text,
            "line": [f"{self.town}{self.locality}{self.line}"],
            "city": "莆田市",
            "district": self.district,
            "state": "福建省",
            "country": "CN",
        }


def make_address(district_code: str, town: str, locality: str, number: int, building: int) -> Address:
    if is_urban(town):
        street = _STREETS[number % len(_STREETS)]
        line = f"{street}{number}号{building}栋{(number % 6) + 1}0{(building % 4) + 1}室"
    else:
        line = f"{number}号"
    return Address(district_code, town, locality, line)
