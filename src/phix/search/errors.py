"""Search errors: every bad parameter is a 400 (category INCORRECT) with the parameter named."""

from __future__ import annotations

from phix.errors import Category, FhirError


def bad_param(name: str, message: str) -> FhirError:
    return FhirError(Category.INCORRECT, f"search parameter {name!r}: {message}", code="invalid")


def bad_value(name: str, value: str, message: str) -> FhirError:
    return FhirError(
        Category.INCORRECT, f"search parameter {name!r} value {value!r}: {message}", code="invalid"
    )


def unsupported(name: str, message: str) -> FhirError:
    return FhirError(Category.INCORRECT, f"search parameter {name!r}: {message}", code="not-supported")


class UnknownParameter(FhirError):
    """A parameter the server does not know or support (ignored with ``Prefer: handling=lenient``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(Category.INCORRECT, f"search parameter {name!r}: {message}", code="not-supported")
        self.name = name
