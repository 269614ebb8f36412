"""``multipart/related`` for DICOMweb (RFC 2387, PS3.18 8.6.1.2): parse STOW-RS bodies, write
WADO-RS responses. Media-type parameters are parsed per RFC 9110 (quoted strings allowed)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)')


class MultipartError(ValueError):
    pass


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """``multipart/related; type="application/dicom"; boundary=x`` -> (type, params)."""
    main, _, _ = header.partition(";")
    params = {}
    for name, value in _PARAM.findall(header[len(main) :]):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name.lower()] = value
    return main.strip().lower(), params


def parse(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related body into (headers, content) parts."""
    kind, params = media_type(content_type)
    if kind != "multipart/related":
        raise MultipartError(f"expected multipart/related, got {kind or 'no Content-Type'}")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise MultipartError("no part found (boundary not in the body)")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # close delimiter
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("a part has no header/body separator")
        headers: dict[str, str] = {}
        for line in head.split(b"\r\n"):
            if b":" in line:
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    else:
        raise MultipartError("the body ends without the closing boundary")
    return parts


def new_boundary() -> str:
    return f"phix-{uuid.uuid4().hex}"


async def stream(
    boundary: str,
    items: Iterable[tuple[str, Callable[[], Awaitable[bytes]]]],
) -> AsyncIterator[bytes]:
    """Yield a multipart/related body: (part Content-Type, loader) per part."""
    for part_type, load in items:
        content = await load()
        yield f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("latin-1") + content + b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")
