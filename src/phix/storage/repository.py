"""The versioned resource repository: every FHIR write and read goes through here.

A repository is bound per request to one connection and one :class:`RequestContext`. Writes run
in a (possibly nested) transaction: the resource row, its version row and every listener's rows
(search index, patient index ...) commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
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
    """Called inside the write transaction after each new version (resource None = deleted).

    A listener may also define ``after_write_many(conn, written)`` with ``written`` a sequence of
    ``(version, resource)``: :meth:`Repository.put_many` then calls it once for the whole batch
    (one round trip instead of one per resource); otherwise ``after_write`` is called per item.
    A listener with ``after_write_many`` and a true ``deferrable`` attribute (the search index)
    may get the writes of a :meth:`Repository.deferring` block at its end or at
    :meth:`Repository.flush`, still inside the transaction."""

    async def after_write(
        self, conn: asyncpg.Connection, version: Version, resource: dict[str, Any] | None
    ) -> None: ...


Written = tuple[Version, dict[str, Any] | None]


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


_INSERT_NEW_MANY = """
WITH cur AS (
    INSERT INTO resources (res_type, res_id, version, last_updated, deleted, body)
    SELECT $1, t.res_id, 1, $3, false, t.body FROM unnest($2::text[], $4::bytea[]) AS t(res_id, body)
    ON CONFLICT (res_type, res_id) DO NOTHING
    RETURNING rid, res_id, body
)
INSERT INTO resource_versions (rid, res_type, res_id, version, last_updated, method, deleted, body)
SELECT rid, $1, res_id, 1, $3, $5, false, body FROM cur
RETURNING rid, res_id
"""

_INSERT_NEXT_MANY = """
WITH t AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::bytea[]) AS t(rid, version, body)
), cur AS (
    UPDATE resources r SET version = t.version, last_updated = $4, deleted = false, body = t.body
    FROM t WHERE r.rid = t.rid
    RETURNING r.rid, r.res_type, r.res_id, r.version, r.body
)
INSERT INTO resource_versions (rid, res_type, res_id, version, last_updated, method, deleted, body)
SELECT rid, res_type, res_id, version, $4, $5, false, body FROM cur
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
        self._deferred: dict[int, Written] | None = None  # rid -> last write, inside deferring()
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

    async def put_many(
        self,
        res_type: str,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        method: str = "PUT",
        validated: bool = False,
    ) -> list[Version]:
        """:meth:`update` (or update-as-create) of many ``(id, resource)`` of one type in one
        transaction and a constant number of round trips: one row-lock read, one insert of the new
        resources, one update of the existing ones, one call per listener (``after_write_many``
        where the listener has it). Versions are returned in the order of ``items``; ids must be
        distinct."""
        if not items:
            return []
        if not validated:
            for _, resource in items:
                validate(res_type, resource)
        ids = [res_id for res_id, _ in items]
        if len(set(ids)) != len(ids):
            raise ValueError("put_many: ids must be distinct")
        async with self.conn.transaction():
            rows = await self.conn.fetch(
                "SELECT rid, res_id, version FROM resources WHERE res_type = $1 AND res_id = ANY($2::text[])"
                " ORDER BY rid FOR UPDATE",
                res_type,
                ids,
            )
            current = {r["res_id"]: (r["rid"], r["version"]) for r in rows}
            moment = self.clock()
            written: dict[str, Written] = {}
            fresh = [(res_id, r) for res_id, r in items if res_id not in current]
            if fresh:
                stored = {res_id: with_meta(r, res_id, 1, moment) for res_id, r in fresh}
                bodies = {res_id: fhirjson.dumps(doc) for res_id, doc in stored.items()}
                inserted = await self.conn.fetch(
                    _INSERT_NEW_MANY, res_type, list(bodies), moment, list(bodies.values()), method
                )
                for row in inserted:
                    res_id = row["res_id"]
                    version = Version(row["rid"], res_type, res_id, 1, moment, False, bodies[res_id], method)
                    written[res_id] = (version, stored[res_id])
            later = [(res_id, r) for res_id, r in items if res_id in current]
            if later:
                stored = {res_id: with_meta(r, res_id, current[res_id][1] + 1, moment) for res_id, r in later}
                bodies = {res_id: fhirjson.dumps(doc) for res_id, doc in stored.items()}
                await self.conn.execute(
                    _INSERT_NEXT_MANY,
                    [current[res_id][0] for res_id in bodies],
                    [current[res_id][1] + 1 for res_id in bodies],
                    list(bodies.values()),
                    moment,
                    method,
                )
                for res_id, body in bodies.items():
                    rid, number = current[res_id][0], current[res_id][1] + 1
                    written[res_id] = (
                        Version(rid, res_type, res_id, number, moment, False, body, method),
                        stored[res_id],
                    )
            await self._notify_many(list(written.values()))
            # Created by a concurrent transaction between our read and our insert: update those.
            for res_id, resource in items:
                if res_id not in written:
                    version, _ = await self.update(res_type, res_id, resource, method=method, validated=True)
                    written[res_id] = (version, None)
        return [written[res_id][0] for res_id in ids]

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

    @asynccontextmanager
    async def deferring(self) -> AsyncIterator[None]:
        """Within the block, deferrable listeners (see :class:`WriteListener`) get its writes in
        one call at the end (or at :meth:`flush`), e.g. a transaction bundle's index rows in one
        statement. Call :meth:`flush` before anything in the block reads what they write."""
        if self._deferred is not None:  # nested: the outer block flushes
            yield
            return
        self._deferred = {}
        try:
            yield
            await self.flush()
        finally:
            self._deferred = None

    async def flush(self) -> None:
        """Hand the deferred writes to the deferrable listeners now."""
        if not self._deferred:
            return
        # One entry per rid, its last write: rows of its earlier versions in the block were never
        # written, and a version 1 kept here is still a first version (nothing to replace).
        written = list(self._deferred.values())
        self._deferred.clear()
        for listener in self.listeners:
            if _deferrable(listener):
                await listener.after_write_many(self.conn, written)  # type: ignore[attr-defined]

    def _defer(self, written: Sequence[Written]) -> bool:
        if self._deferred is None:
            return False
        for version, resource in written:
            self._deferred[version.rid] = (version, resource)
        return True

    async def _notify(self, version: Version, resource: dict[str, Any] | None) -> None:
        await self._notify_many([(version, resource)])

    async def _notify_many(self, written: Sequence[Written]) -> None:
        if not written:
            return
        deferred = self._defer(written)
        for listener in self.listeners:
            if deferred and _deferrable(listener):
                continue
            many = getattr(listener, "after_write_many", None)
            if many is not None:
                await many(self.conn, written)
            else:
                for version, resource in written:
                    await listener.after_write(self.conn, version, resource)


def _deferrable(listener: WriteListener) -> bool:
    return bool(getattr(listener, "deferrable", False)) and hasattr(listener, "after_write_many")


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
