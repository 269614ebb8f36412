"""Deterministic identifiers and random sub-streams derived from the seed.

Everything random in the generator comes from :func:`substream`, a ``random.Random`` seeded with
a string (hashed with SHA-512 by the standard library, so independent of ``PYTHONHASHSEED``);
every resource id, UUID and DICOM UID is a hash of the seed and a stable key.
"""

from __future__ import annotations

import hashlib
import random
import uuid


def _digest(parts: tuple[object, ...]) -> bytes:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def substream(*parts: object) -> random.Random:
    """An independent random stream for one purpose (e.g. ``substream(seed, "household", 17)``)."""
    return random.Random("/".join(str(p) for p in parts))


def fhir_id(*parts: object) -> str:
    """A 20-hex-digit FHIR id (matches ``[A-Za-z0-9\\-\\.]{1,64}``)."""
    return _digest(parts).hex()[:20]


def uuid_for(*parts: object) -> str:
    """A version-4-shaped UUID string derived from the key."""
    return str(uuid.UUID(bytes=_digest(parts), version=4))


def dicom_uid(*parts: object) -> str:
    """A DICOM UID in the ``2.25.<uuid as integer>`` form (PS3.5 B.2), at most 44 characters."""
    return f"2.25.{uuid.UUID(bytes=_digest(parts), version=4).int}"


def hex_token(length: int, *parts: object) -> str:
    """Upper-case hex characters derived from the key (up to 64)."""
    return hashlib.blake2b("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:length].upper()
