"""Chinese names as Putian front desks meet them: Fujian surnames, era-typical given names,
homophones, look-alike characters, traditional characters and pinyin."""

from __future__ import annotations

import functools
import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from typing import Literal

Sex = Literal["male", "female"]

# Surname, its reading as a surname, and a weight (per mille, roughly Putian's distribution:
# 陈 and 林 lead, 黄 and 郑 follow; 卓, 翁, 柯 are typically Putian).
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("陈", "chen", 140),
    ("林", "lin", 120),
    ("黄", "huang", 80),
    ("郑", "zheng", 62),
    ("吴", "wu", 40),
    ("李", "li", 34),
    ("王", "wang", 30),
    ("张", "zhang", 28),
    ("刘", "liu", 24),
    ("蔡", "cai", 24),
    ("杨", "yang", 20),
    ("许", "xu", 19),
    ("周", "zhou", 18),
    ("方", "fang", 18),
    ("朱", "zhu", 15),
    ("余", "yu", 15),
    ("卓", "zhuo", 12),
    ("翁", "weng", 11),
    ("柯", "ke", 10),
    ("宋", "song", 10),
    ("徐", "xu", 10),
    ("游", "you", 9),
    ("曾", "zeng", 9),
    ("潘", "pan", 8),
    ("谢", "xie", 8),
    ("姚", "yao", 7),
    ("苏", "su", 7),
    ("洪", "hong", 7),
    ("戴", "dai", 6),
    ("肖", "xiao", 6),
    ("詹", "zhan", 6),
    ("魏", "wei", 6),
    ("阮", "ruan", 5),
    ("康", "kang", 5),
    ("邱", "qiu", 5),
    ("傅", "fu", 5),
    ("薛", "xue", 4),
    ("唐", "tang", 4),
    ("彭", "peng", 4),
    ("严", "yan", 4),
    ("叶", "ye", 4),
    ("龚", "gong", 3),
    ("范", "fan", 3),
    ("单", "shan", 1),
    ("仇", "qiu", 1),
    ("查", "zha", 1),
    ("欧阳", "ouyang", 1),
    ("司马", "sima", 0.5),
)
SURNAME_PINYIN: dict[str, str] = {s: p for s, p, _ in SURNAMES}

_SINGLE_MALE = "伟强军勇杰斌涛明华辉磊超鹏波平刚峰林彬俊健亮宇浩鑫凯晨阳龙"
_SINGLE_FEMALE = "娜丽静敏燕芳婷玲霞红梅琴英萍雪慧莉丹颖艳洁琳晶倩欣"
_DOUBLE: dict[tuple[Sex, int], str] = {
    (
        "male",
        0,
    ): "建国 国华 金水 德福 文清 国平 志明 金龙 国庆 建华 明华 福清 亚明 荣华 清泉 天赐 永福 振华 文华"
    " 金德 春生 水生",
    ("male", 1): "志强 建平 国强 文斌 志勇 建明 海峰 晓东 文杰 国辉 少华 荣辉 亚平 建伟 志华 永辉 明辉 晓明",
    ("male", 2): "俊杰 志伟 伟强 文龙 宏伟 家豪 鹏飞 少杰 建斌 晓峰 振宇 志鹏 俊峰 冠华 伟杰 鸿斌 泽宇 宇航",
    ("male", 3): "子轩 浩然 梓轩 宇轩 俊熙 浩宇 梓豪 一鸣 子豪 宇泽 铭轩 皓轩 子墨 沐宸 奕辰 梓睿 宇辰 锦程",
    ("female", 0): "秀英 桂英 玉兰 秀兰 淑珍 桂兰 玉珍 秀珍 凤英 金凤 玉梅 秀琴 美玉 丽珠 玉华 秀云 碧霞",
    ("female", 1): "丽华 丽琴 秀梅 美华 丽萍 春梅 秀玲 丽娟 晓燕 雪梅 丽清 美玲 金花 丽君 惠珍 小红",
    ("female", 2): "晓丽 丽娜 婷婷 雅婷 丽婷 晓婷 静怡 思婷 佳慧 丹丹 玉婷 晓玲 慧敏 燕萍 艳华 雪芳",
    (
        "female",
        3,
    ): "欣怡 梓涵 雨涵 子涵 诗涵 可馨 一诺 语桐 梓萱 思涵 欣妍 紫涵 雨桐 依诺 梦瑶 佳怡 若汐 沐瑶",
}
# Share of one-character given names per era (they peaked among people born in the 1980s-90s).
_SINGLE_SHARE = (0.12, 0.28, 0.38, 0.15)

# Characters a clerk may hear or type for one another (same or dialect-close reading).
HOMOPHONES: tuple[str, ...] = (
    "伟玮炜韦维",
    "丽莉俐立力",
    "娜纳",
    "静靖晶婧菁",
    "敏闽珉",
    "华桦骅",
    "明铭鸣",
    "军君钧",
    "杰洁捷",
    "燕艳雁彦",
    "玲琳林凌灵",
    "婷亭庭",
    "霞侠",
    "红虹宏鸿弘",
    "梅玫",
    "琴芹勤",
    "英瑛莹颖盈",
    "萍平苹屏",
    "慧惠蕙",
    "芳方",
    "秀绣",
    "志智治致",
    "国帼",
    "建健剑",
    "文雯闻",
    "斌彬滨宾",
    "涛韬滔",
    "强蔷",
    "勇永涌泳",
    "辉晖徽",
    "鹏朋彭",
    "磊蕾",
    "超潮",
    "波博",
    "金锦晋",
    "荣蓉容融",
    "福富",
    "清青卿",
    "德得",
    "兴星欣新馨",
    "云芸韵",
    "雪学",
    "梓子紫姿",
    "涵晗寒韩",
    "轩萱宣璇",
    "浩昊皓",
    "怡宜仪艺依",
    "宇雨语羽",
    "龙隆",
    "凤峰锋丰",
    # Surnames confused in Putian (Puxian Min merges huang/wang, chen/cheng ...).
    "黄王",
    "陈程",
    "吴伍",
    "李黎",
    "张章",
    "刘柳",
    "杨阳",
    "许徐",
    "余俞于",
    "周邹",
)
# Characters that look alike (mis-read handwriting, wrong pick in an input method).
LOOKALIKES: tuple[str, ...] = (
    "王玉主",
    "玲铃岭",
    "婷停",
    "晶品",
    "明朋",
    "秀季",
    "英央",
    "芳芬",
    "梅海",
    "霞暇",
    "辉挥",
    "国固",
    "金全",
    "清请情晴",
    "福副幅",
    "陈阵",
    "黄簧",
    "吴昊",
    "李季",
    "刘浏",
    "杨扬汤",
    "许浒",
    "蔡祭",
    "方万",
    "余佘",
    "卓桌",
    "徐涂",
    "柯珂",
    "郑邓",
    "宇字",
    "丽而",
    "静净",
    "杰木",
    "华毕",
    "建健",
    "燕蒸",
    "敏繁",
    "斌赋",
    "鹏朋",
    "林休",
)


def _index(groups: Sequence[str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for group in groups:
        for ch in group:
            table[ch] = table.get(ch, "") + "".join(
                c for c in group if c != ch and c not in table.get(ch, "")
            )
    return table


_HOMOPHONE_OF = _index(HOMOPHONES)
_LOOKALIKE_OF = _index(LOOKALIKES)


class Weighted:
    """Draw from a fixed list with weights, O(log n) per draw."""

    def __init__(self, items: Sequence[str], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self._cum = list(accumulate(weights))

    def draw(self, rng: random.Random) -> str:
        return self.items[bisect(self._cum, rng.random() * self._cum[-1])]


def _zipf(items: Sequence[str], exponent: float = 1.0) -> Weighted:
    return Weighted(items, [1.0 / (rank + 1) ** exponent for rank in range(len(items))])


_SURNAME_DRAW = Weighted([s for s, _, _ in SURNAMES], [w for _, _, w in SURNAMES])
_SINGLE_DRAW = {"male": _zipf(_SINGLE_MALE, 1.1), "female": _zipf(_SINGLE_FEMALE, 1.1)}
_DOUBLE_DRAW = {key: _zipf(text.split(), 0.8) for key, text in _DOUBLE.items()}


def era(birth_year: int) -> int:
    """Naming era: 0 before 1960, 1 for 1960-79, 2 for 1980-99, 3 from 2000."""
    return 0 if birth_year < 1960 else 1 if birth_year < 1980 else 2 if birth_year < 2000 else 3


def draw_surname(rng: random.Random) -> str:
    return _SURNAME_DRAW.draw(rng)


def draw_given(rng: random.Random, sex: Sex, birth_year: int) -> str:
    """A given name typical of the sex and birth era (collisions such as 伟 or 娜 are frequent)."""
    e = era(birth_year)
    if rng.random() < _SINGLE_SHARE[e]:
        return _SINGLE_DRAW[sex].draw(rng)
    return _DOUBLE_DRAW[(sex, e)].draw(rng)


def homophone(ch: str, rng: random.Random) -> str | None:
    options = _HOMOPHONE_OF.get(ch)
    return rng.choice(options) if options else None


def lookalike(ch: str, rng: random.Random) -> str | None:
    options = _LOOKALIKE_OF.get(ch)
    return rng.choice(options) if options else None


@functools.cache
def _s2t() -> object:
    import opencc

    return opencc.OpenCC("s2t")


def to_traditional(text: str) -> str:
    """Traditional-character spelling (OpenCC s2t, offline dictionaries)."""
    converter = _s2t()
    result = str(converter.convert(text))  # type: ignore[attr-defined]
    return result


@functools.cache
def _char_pinyin(ch: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(ch, style=Style.NORMAL, errors="default"))


def surname_pinyin(family: str) -> str:
    """Reading of a surname; the table fixes pypinyin's wrong default for 曾, 单, 仇, 查 ..."""
    known = SURNAME_PINYIN.get(family)
    if known is not None:
        return known
    return "".join(_char_pinyin(ch) for ch in family)


def given_pinyin(given: str) -> str:
    return "".join(_char_pinyin(ch) for ch in given)


def pinyin_name(family: str, given: str) -> tuple[str, str]:
    """Capitalised pinyin (``("Chen", "Xiaoming")``); ASCII input is returned unchanged."""
    if family.isascii() and given.isascii():
        return family, given
    return surname_pinyin(family).capitalize(), given_pinyin(given).capitalize()
