"""Conditional create, update, patch and delete, and conditional references.

Criteria are search query strings (``identifier=sys|val``) evaluated by the search engine's
finder. Each conditional write first takes a transaction-scoped advisory lock on its normalised
criteria, so two concurrent conditional creates with the same criteria create one resource: the
second waits, then its search (a fresh READ COMMITTED snapshot) sees the first one's row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl

import asyncpg

from phix.errors import Category, FhirError
from phix.storage.repository import Repository, Version, new_id

_CONTROL = {"_format", "_pretty"}


class Finder(Protocol):
    def __call__(
        self,
        conn: asyncpg.Connection,
        res_type: str,
        params: list[tuple[str, str]],
        *,
        limit: int | None = None,
    ) -> Awaitable[list[tuple[int, str]]]: ...


def parse_criteria(query: str, what: str) -> list[tuple[str, str]]:
    params = [(k, v) for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True) if k not in _CONTROL]
    if not params:
        raise FhirError(Category.INCORRECT, f"{what}: empty search criteria")
    return params


async def lock_criteria(conn: asyncpg.Connection, res_type: str, params: list[tuple[str, str]]) -> None:
    canonical = res_type + "?" + "&".join(f"{k}={v}" for k, v in sorted(params))
    key = int.from_bytes(hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big", signed=True)
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


class Conditional:
    def __init__(self, finder: Finder | None, delete_limit: int = 100) -> None:
        self.finder = finder
        self.delete_limit = delete_limit

    async def find(
        self, conn: asyncpg.Connection, res_type: str, params: list[tuple[str, str]], limit: int | None = None
    ) -> list[tuple[int, str]]:
        if self.finder is None:
            raise FhirError(Category.UNSUPPORTED, "Conditional interactions need the search engine")
        return await self.finder(conn, res_type, params, limit=limit)

    async def create(
        self,
        repo: Repository,
        res_type: str,
        resource: dict[str, Any],
        criteria: str,
        *,
        res_id: str | None = None,
        validated: bool = False,
    ) -> tuple[Version, bool]:
        """If-None-Exist: zero matches -> create; one -> return it (200); several -> 412."""
        params = parse_criteria(criteria, "If-None-Exist")
        async with repo.conn.transaction():
            await lock_criteria(repo.conn, res_type, params)
            found = await self.find(repo.conn, res_type, params, limit=2)
            if len(found) > 1:
                raise FhirError(
                    Category.PRECONDITION, f"If-None-Exist '{criteria}' matches several resources"
                )
            if found:
                return await repo.read(res_type, found[0][1]), False
            return await repo.create(res_type, resource, res_id=res_id or new_id(), validated=validated), True

    async def update(
        self,
        repo: Repository,
        res_type: str,
        resource: dict[str, Any],
        criteria: str,
        *,
        if_match: int | None = None,
        new_id_for_create: str | None = None,
        validated: bool = False,
    ) -> tuple[Version, bool]:
        """``PUT [type]?criteria``: zero -> create, one -> update it, several -> 412."""
        params = parse_criteria(criteria, "Conditional update")
        async with repo.conn.transaction():
            await lock_criteria(repo.conn, res_type, params)
            found = await self.find(repo.conn, res_type, params, limit=2)
            if len(found) > 1:
                raise FhirError(
                    Category.PRECONDITION, f"Conditional update '{criteria}' matches several resources"
                )
            body_id = resource.get("id")
            if found:
                target = found[0][1]
                if body_id is not None and body_id != target:
                    raise FhirError(
                        Category.INCORRECT,
                        f"The body's id '{body_id}' differs from the matched resource {res_type}/{target}",
                        expression=[f"{res_type}.id"],
                    )
                return await repo.update(res_type, target, resource, if_match=if_match, validated=validated)
            res_id = body_id if isinstance(body_id, str) else (new_id_for_create or new_id())
            return await repo.update(res_type, res_id, resource, if_match=if_match, validated=validated)

    async def patch(
        self,
        repo: Repository,
        res_type: str,
        criteria: str,
        apply: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        if_match: int | None = None,
    ) -> Version:
        params = parse_criteria(criteria, "Conditional patch")
        async with repo.conn.transaction():
            found = await self.find(repo.conn, res_type, params, limit=2)
            if not found:
                raise FhirError(Category.NOT_FOUND, f"Conditional patch '{criteria}' matches no resource")
            if len(found) > 1:
                raise FhirError(
                    Category.PRECONDITION, f"Conditional patch '{criteria}' matches several resources"
                )
            return await repo.patch(res_type, found[0][1], apply, if_match=if_match)

    async def delete(
        self, repo: Repository, res_type: str, criteria: str, *, multiple: bool
    ) -> list[Version]:
        """Delete every match (up to the limit) when ``multiple``; otherwise several matches -> 412."""
        params = parse_criteria(criteria, "Conditional delete")
        async with repo.conn.transaction():
            found = await self.find(repo.conn, res_type, params, limit=self.delete_limit + 1)
            if len(found) > 1 and not multiple:
                raise FhirError(
                    Category.PRECONDITION, f"Conditional delete '{criteria}' matches several resources"
                )
            if len(found) > self.delete_limit:
                raise FhirError(
                    Category.PRECONDITION,
                    f"Conditional delete '{criteria}' matches more than {self.delete_limit} resources",
                    code="too-costly",
                )
            deleted = []
            for _, res_id in found:
                version = await repo.delete(res_type, res_id)
                if version is not None:
                    deleted.append(version)
            return deleted

    async def resolve(self, conn: asyncpg.Connection, reference: str) -> str:
        """A conditional reference ``Patient?identifier=...`` -> ``Patient/<id>`` (exactly one match)."""
        res_type, _, query = reference.partition("?")
        params = parse_criteria(query, f"Conditional reference '{reference}'")
        found = await self.find(conn, res_type, params, limit=2)
        if len(found) != 1:
            raise FhirError(
                Category.PRECONDITION if found else Category.NOT_FOUND,
                f"Conditional reference '{reference}' matches "
                + ("several resources" if found else "no resource"),
            )
        return f"{res_type}/{found[0][1]}"
