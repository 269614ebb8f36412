"""A small UCUM canonicaliser for quantity search: common units to a base unit and a factor.

Not a UCUM implementation: it covers the mass, length, volume, time, amount and concentration units
clinical data uses most, so ``5.4|http://unitsofmeasure.org|mmol/L`` finds ``5400 umol/L``.
Temperature (offset scales) and arbitrary unit algebra are out of scope.
"""

from __future__ import annotations

from decimal import Decimal

UCUM = "http://unitsofmeasure.org"

_PREFIX: dict[str, Decimal] = {
    p: Decimal(f)
    for p, f in (
        ("", "1"),
        ("k", "1e3"),
        ("d", "0.1"),
        ("c", "0.01"),
        ("m", "1e-3"),
        ("u", "1e-6"),
        ("n", "1e-9"),
    )
}
_BASE = {"g": "g", "m": "m", "L": "L", "l": "L", "mol": "mol", "s": "s", "eq": "eq", "U": "U"}

_SPECIAL: dict[str, tuple[str, Decimal]] = {
    "min": ("s", Decimal(60)),
    "h": ("s", Decimal(3600)),
    "d": ("s", Decimal(86400)),
    "wk": ("s", Decimal(604800)),
    "mo": ("s", Decimal("2629800")),  # mean Julian month
    "a": ("s", Decimal(31557600)),  # Julian year
    "[lb_av]": ("g", Decimal("453.59237")),
    "[oz_av]": ("g", Decimal("28.349523125")),
    "[in_i]": ("m", Decimal("0.0254")),
    "[ft_i]": ("m", Decimal("0.3048")),
    "mm[Hg]": ("mm[Hg]", Decimal(1)),
    "%": ("%", Decimal(1)),
    "1": ("1", Decimal(1)),
}


def _simple(unit: str) -> tuple[str, Decimal] | None:
    if unit in _SPECIAL:
        return _SPECIAL[unit]
    for base, canonical in _BASE.items():
        if unit.endswith(base):
            prefix = unit[: -len(base)]
            if prefix in _PREFIX:
                return canonical, _PREFIX[prefix]
    return None


def canonical(code: str) -> tuple[str, Decimal] | None:
    """``mg/dL`` -> (``g/L``, 0.01); None when the unit is not understood."""
    if not code or " " in code:
        return None
    parts = code.split("/")
    if len(parts) > 2:
        return None
    top = _simple(parts[0])
    if top is None:
        return None
    if len(parts) == 1:
        return top
    bottom = _simple(parts[1])
    if bottom is None:
        return None
    return f"{top[0]}/{bottom[0]}", top[1] / bottom[1]
