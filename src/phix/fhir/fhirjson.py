"""FHIR JSON in and out, keeping every decimal exactly as it was sent.

FHIR says a decimal's precision is significant (``1.50`` is not ``1.5``), but a JSON parser that
makes floats loses it. :func:`loads` keeps orjson's result when that is lossless: when orjson
writes the document back with the same text (up to whitespace), or when every number in the text
is an integer orjson holds exactly or a float orjson writes back as sent (``72.5``). Otherwise it
parses again with the standard library, turning every non-integer number (and every integer too
long for 64 bits) into a :class:`~decimal.Decimal` that keeps its digits. :func:`dumps` writes a
``Decimal`` back as its digits (``orjson.Fragment``).

orjson checks the text first, so both paths accept and refuse the same documents: no NaN, no lone
surrogates, no BOM, numbers within a double's range, at most the 254 levels orjson can write.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError

# A number token in value position (after ":", "[" or ","). Numbers inside strings may match too:
# that only sends the document down the exact (slower) path.
_NUMBER = re.compile(rb"[:\[,][ \t\r\n]*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)")
_LONG_INT = 18  # digits orjson and Python ints always agree on


def _lossless(raw: bytes) -> bool:
    """True when orjson's floats and ints would write back every number of ``raw`` unchanged."""
    for match in _NUMBER.finditer(raw):
        text = match.group(1)
        if b"." in text or b"e" in text or b"E" in text:
            if orjson.dumps(float(text)) != text:
                return False
        elif len(text) > _LONG_INT:
            return False
    return True


_WHITESPACE = b" \t\r\n"


def _same_numbers(raw: bytes, written: bytes) -> bool:
    """True when orjson writes ``raw`` back with the same text up to whitespace: compact JSON
    (our stored bodies, most clients) or indented JSON without escapes. Numbers hold no whitespace
    and sit between the same structural characters in both, so they are then the same text."""
    return written == raw or written.translate(None, _WHITESPACE) == raw.translate(None, _WHITESPACE)


def _int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _LONG_INT else Decimal(text)


def loads(raw: bytes | str) -> Any:
    """Parse FHIR JSON; raises :data:`JSONDecodeError` (a ``ValueError``) for invalid JSON."""
    data = raw.encode() if isinstance(raw, str) else raw
    parsed = orjson.loads(data)
    try:
        written = orjson.dumps(parsed)
    except TypeError:  # orjson reads 1024 levels but writes 254: such a document cannot be stored
        raise JSONDecodeError("the document is nested too deeply (over 254 levels)", "", 0) from None
    if _same_numbers(data, written) or _lossless(data):
        return parsed
    return json.loads(data.decode("utf-8"), parse_float=Decimal, parse_int=_int)


def decimal_text(value: Decimal) -> str:
    """JSON text of a decimal with its precision: ``1.50``, ``0.0000001``, ``1.5E+3``, ``-0``."""
    if not value.is_finite():
        raise TypeError(f"{value} is not a JSON number")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -30 <= exponent <= 0:
        return format(value, "f")  # digits after the point as sent; never an exponent
    return str(value)  # "1E+2": the significant digits only (JSON allows E and +)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_text(value))
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    """Compact (or two-space indented) JSON; decimals keep their digits."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_INDENT_2 if pretty else 0)


def reformat(stored: bytes) -> bytes:
    """Stored JSON bytes re-indented for ``_pretty=true``, decimals unchanged."""
    return dumps(loads(stored), pretty=True)
