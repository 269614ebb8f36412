"""The versioned resource repository: every FHIR write and read goes through here.

A repository is bound per request to one connection and one :class:`RequestContext`. Writes run
in a (possibly nested) transaction: the resource row, its version row and every listener's rows
(search index, patient index ...) commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from phix.errors import Category, FhirError
from phix.fhir import fhirjson
from phix.fhir.validation import validate
from phix.storage.context import RequestContext


@dataclass(frozen=True)
class Version:
    """One stored version of a resource. ``body`` is the exact stored JSON (None when deleted)."""

    rid: int
    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    deleted: bool
    body: bytes | None
    method: str = "GET"

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def resource(self) -> dict[str, Any]:
        if self.body is None:
            raise FhirError(Category.GONE, f"{self.res_type}/{self.res_id} was deleted")
        parsed: dict[str, Any] = fhirjson.loads(self.body)
        return parsed


class WriteListener(Protocol):
    """Called inside the write transaction after each new version (resource None = deleted)."""

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None: ...


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def with_meta(resource: dict[str, Any], res_id: str, version: int, moment: datetime) -> dict[str, Any]:
    """The resource as stored: server-assigned id and meta first, the client's content after."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = format_instant(moment)
    out: dict[str, Any] = {"resourceType": resource["resourceType"], "id": res_id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return out


_COLUMNS = "rid, res_type, res_id, version, last_updated, deleted, body"

_INSERT_NEW = """
WITH cur AS (
    INSERT INTO resources (res_type, res_id, version, last_updated, deleted, body)
    VALUES ($1, $2, 1, $3, false, $4)
    ON CONFLICT (res_type, res_id) DO NOTHING
    RETURNING rid
)
INSERT INTO resource_versions (rid, res_type, res_id, version, last_updated, method, deleted, body)
SELECT rid, $1, $2, 1, $3, $5, false, $4 FROM cur
RETURNING rid
"""

_INSERT_NEXT = """
WITH cur AS (
    UPDATE resources SET version = $2, last_updated = $3, deleted = $5, body = $4
    WHERE rid = $1
    RETURNING rid, res_type, res_id
)
INSERT INTO resource_versions (rid, res_type, res_id, version, last_updated, method, deleted, body)
SELECT rid, res_type, res_id, $2, $3, $6, $5, $4 FROM cur
"""


def _version(row: asyncpg.Record, method: str = "GET") -> Version:
    return Version(
        row["rid"],
        row["res_type"],
        row["res_id"],
        row["version"],
        row["last_updated"],
        row["deleted"],
        row["body"],
        row.get("method", method),
    )


class Repository:
    def __init__(
        self,
        conn: asyncpg.Connection,
        ctx: RequestContext,
        listeners: Sequence[WriteListener] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.conn = conn
        self.ctx = ctx
        self.listeners = listeners
        self.clock = clock

    # -- reads ------------------------------------------------------------------------------------

    async def current(self, res_type: str, res_id: str) -> Version | None:
        """The current version (possibly a tombstone), or None if the resource never existed."""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2", res_type, res_id
        )
        return None if row is None else _version(row)

    async def read(self, res_type: str, res_id: str) -> Version:
        found = await self.current(res_type, res_id)
        if found is None:
            raise FhirError(Category.NOT_FOUND, f"Resource {res_type}/{res_id} is not known")
        if found.deleted:
            raise FhirError(
                Category.GONE,
                f"Resource {res_type}/{res_id} was deleted",
                headers={"ETag": found.etag, "Last-Modified": _http_date(found.last_updated)},
            )
        return found

    async def vread(self, res_type: str, res_id: str, version: int) -> Version:
        row = await self.conn.fetchrow(
            "SELECT rid, res_type, res_id, version, last_updated, deleted, body, method"
            " FROM resource_versions WHERE res_type = $1 AND res_id = $2 AND version = $3",
            res_type,
            res_id,
            version,
        )
        if row is None:
            raise FhirError(Category.NOT_FOUND, f"Version {version} of {res_type}/{res_id} is not known")
        found = _version(row)
        if found.deleted:
            raise FhirError(Category.GONE, f"Version {version} of {res_type}/{res_id} is a deletion")
        return found

    # -- writes -----------------------------------------------------------------------------------

    async def create(
        self, res_type: str, resource: dict[str, Any], *, res_id: str | None = None, validated: bool = False
    ) -> Version:
        """Create a resource with a server id (or ``res_id``); the body's ``id`` is ignored."""
        if not validated:
            validate(res_type, resource)
        async with self.conn.transaction():
            return await self._insert_first(res_type, res_id or new_id(), resource, "POST")

    async def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: str = "PUT",
        validated: bool = False,
    ) -> tuple[Version, bool]:
        """Update, or create with the client's id (update-as-create). Returns (version, created)."""
        if not validated:
            validate(res_type, resource)
        async with self.conn.transaction():
            for _ in range(3):
                row = await self.conn.fetchrow(
                    "SELECT rid, version FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
                    res_type,
                    res_id,
                )
                if row is None:
                    if if_match is not None:
                        raise FhirError(
                            Category.PRECONDITION,
                            f"If-Match given but {res_type}/{res_id} does not exist",
                        )
                    created = await self._try_insert_first(res_type, res_id, resource, method)
                    if created is not None:
                        return created, True
                    continue  # a concurrent request created it first: update that one
                _check_if_match(if_match, res_type, res_id, row["version"])
                return await self._insert_next(
                    row["rid"], res_type, res_id, row["version"], resource, method
                ), False
        raise FhirError(Category.BUSY, f"Could not update {res_type}/{res_id}: concurrent creates")

    async def delete(self, res_type: str, res_id: str, *, if_match: int | None = None) -> Version | None:
        """Write a tombstone version. None when there was nothing to delete (already gone or unknown)."""
        async with self.conn.transaction():
            row = await self.conn.fetchrow(
                "SELECT rid, version, deleted FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
                res_type,
                res_id,
            )
            if row is None:
                if if_match is not None:
                    raise FhirError(Category.PRECONDITION, f"{res_type}/{res_id} does not exist")
                return None
            _check_if_match(if_match, res_type, res_id, row["version"])
            if row["deleted"]:
                return None
            return await self._insert_next(row["rid"], res_type, res_id, row["version"], None, "DELETE")

    async def patch(
        self,
        res_type: str,
        res_id: str,
        apply: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        if_match: int | None = None,
    ) -> Version:
        """Apply ``apply`` to the current content under a row lock, validate, store a new version."""
        async with self.conn.transaction():
            row = await self.conn.fetchrow(
                f"SELECT {_COLUMNS} FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
                res_type,
                res_id,
            )
            if row is None:
                raise FhirError(Category.NOT_FOUND, f"Resource {res_type}/{res_id} is not known")
            current = _version(row)
            if current.deleted:
                raise FhirError(Category.GONE, f"Resource {res_type}/{res_id} was deleted")
            _check_if_match(if_match, res_type, res_id, current.version)
            patched = apply(current.resource())
            if patched.get("resourceType") != res_type or patched.get("id") != res_id:
                raise FhirError(
                    Category.INVALID,
                    "A patch may not change resourceType or id",
                    expression=[f"{res_type}.id"],
                    code="processing",
                )
            validate(res_type, patched)
            return await self._insert_next(current.rid, res_type, res_id, current.version, patched, "PATCH")

    # -- internals --------------------------------------------------------------------------------

    async def _insert_first(
        self, res_type: str, res_id: str, resource: dict[str, Any], method: str
    ) -> Version:
        created = await self._try_insert_first(res_type, res_id, resource, method)
        if created is None:
            raise FhirError(Category.CONFLICT, f"Resource {res_type}/{res_id} already exists")
        return created

    async def _try_insert_first(
        self, res_type: str, res_id: str, resource: dict[str, Any], method: str
    ) -> Version | None:
        moment = self.clock()
        stored = with_meta(resource, res_id, 1, moment)
        body = fhirjson.dumps(stored)
        rid = await self.conn.fetchval(_INSERT_NEW, res_type, res_id, moment, body, method)
        if rid is None:
            return None
        version = Version(rid, res_type, res_id, 1, moment, False, body, method)
        await self._notify(version, stored)
        return version

    async def _insert_next(
        self,
        rid: int,
        res_type: str,
        res_id: str,
        previous: int,
        resource: dict[str, Any] | None,
        method: str,
    ) -> Version:
        moment = self.clock()
        number = previous + 1
        stored = None if resource is None else with_meta(resource, res_id, number, moment)
        body = None if stored is None else fhirjson.dumps(stored)
        await self.conn.execute(_INSERT_NEXT, rid, number, moment, body, stored is None, method)
        version = Version(rid, res_type, res_id, number, moment, stored is None, body, method)
        await self._notify(version, stored)
        return version

    async def _notify(self, version: Version, resource: dict[str, Any] | None) -> None:
        for listener in self.listeners:
            await listener.after_write(self.conn, version, resource)


def _check_if_match(if_match: int | None, res_type: str, res_id: str, current: int) -> None:
    if if_match is not None and if_match != current:
        raise FhirError(
            Category.PRECONDITION,
            f"Version conflict: If-Match {if_match} but {res_type}/{res_id} is at version {current}",
            code="conflict",
        )


def _http_date(moment: datetime) -> str:
    from email.utils import format_datetime

    return format_datetime(moment.astimezone(UTC), usegmt=True)


http_date = _http_date

ListenerFactory = Callable[[], Awaitable[WriteListener]]
