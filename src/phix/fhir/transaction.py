"""Batch and transaction processing (FHIR R4 RESTful API, section 3.1.0.11).

A transaction runs in one database transaction: ids are assigned and conditional entries resolved
first, ``urn:uuid:`` fullUrls are rewritten in every reference, entries execute in the spec's order
(DELETE, POST, PUT/PATCH, GET) and referential integrity is checked at the end. Any failure rolls
everything back. A batch runs each entry on its own and reports each entry's outcome.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from phix.errors import Category, FhirError, Issue, to_outcome
from phix.fhir import fhirjson
from phix.fhir.bundle import fragment
from phix.fhir.bundle_entries import ORDER, Entry
from phix.fhir.conditional import Conditional, lock_criteria, parse_criteria
from phix.fhir.http import version_from_etag
from phix.fhir.integrity import deferred_references
from phix.fhir.interactions.patch import applier, parse_patch
from phix.fhir.references import check_targets_exist, rewrite_references
from phix.fhir.validation import validate
from phix.storage.repository import Repository, Version, format_instant, new_id


@dataclass
class Outcome:
    status: int
    version: Version | None = None
    body: Any | None = None  # for GET entries: bytes of a resource or a dict (searchset)

    def response(self, include_resource: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"response": {"status": f"{self.status} {HTTPStatus(self.status).phrase}"}}
        if self.version is not None:
            v = self.version
            out["response"]["location"] = f"{v.res_type}/{v.res_id}/_history/{v.version}"
            out["response"]["etag"] = v.etag
            out["response"]["lastModified"] = format_instant(v.last_updated)
            if include_resource and v.body is not None:
                out["resource"] = fragment(v.body)
        if self.body is not None:
            out["resource"] = fragment(self.body) if isinstance(self.body, bytes) else self.body
        return out


class BundleProcessor:
    def __init__(self, repo: Repository, conditional: Conditional, searcher: Any | None) -> None:
        self.repo = repo
        self.conditional = conditional
        self.searcher = searcher  # async (conn, res_type, params) -> searchset dict, or None

    # -- transaction ----------------------------------------------------------------------------

    async def transaction(self, entries: list[Entry]) -> list[Outcome]:
        for entry in entries:
            self._validate(entry)
        outcomes: dict[int, Outcome] = {}
        async with self.repo.conn.transaction():
            ids = await self._assign_ids(entries)
            # The entries' search index rows are written together (flushed before any search).
            async with self.repo.deferring():
                await self._run(entries, ids, outcomes)
        return [outcomes[e.index] for e in entries]

    async def _run(self, entries: list[Entry], ids: dict[str, str], outcomes: dict[int, Outcome]) -> None:
        with deferred_references() as targets:
            for entry in sorted(entries, key=lambda e: ORDER[e.method]):
                if entry.resource is not None and entry.method in {"POST", "PUT"}:
                    await self._rewrite(entry, ids)
                if entry.method == "GET" or (entry.conditional and entry.method in {"PATCH", "DELETE"}):
                    await self.repo.flush()  # these search
                known = set(targets)
                outcomes[entry.index] = await self._guard(entry, self._execute(entry, ids))
                for key in set(targets) - known:  # name the entry in integrity errors
                    targets[key] = _locate(entry, targets[key], "resource")
        await check_targets_exist(self.repo.conn, targets)

    def _validate(self, entry: Entry) -> None:
        if entry.method not in {"POST", "PUT"}:
            return
        assert entry.res_type is not None and isinstance(entry.resource, dict)
        try:
            validate(entry.res_type, entry.resource)
        except FhirError as exc:
            raise _at(entry, exc, "resource") from None

    async def _assign_ids(self, entries: list[Entry]) -> dict[str, str]:
        """fullUrl -> 'Type/id' for every entry that creates or updates a resource."""
        ids: dict[str, str] = {}
        for entry in entries:
            if entry.method not in {"POST", "PUT"} or entry.res_type is None:
                continue
            target: str | None = None
            if entry.method == "POST":
                if entry.if_none_exist:
                    found = await self._guard(entry, self._find_locked(entry.res_type, entry.if_none_exist))
                    if len(found) > 1:
                        raise _at(
                            entry, FhirError(Category.PRECONDITION, "ifNoneExist matches several resources")
                        )
                    target = found[0][1] if found else new_id()
                else:
                    target = new_id()
            elif entry.conditional:
                found = await self._guard(entry, self._find_locked(entry.res_type, entry.query))
                if len(found) > 1:
                    raise _at(
                        entry,
                        FhirError(Category.PRECONDITION, "conditional update matches several resources"),
                    )
                body_id = entry.resource.get("id") if isinstance(entry.resource, dict) else None
                target = found[0][1] if found else (body_id if isinstance(body_id, str) else new_id())
            else:
                target = entry.res_id
            entry.res_id = target
            if entry.full_url and target:
                ids[entry.full_url] = f"{entry.res_type}/{target}"
        return ids

    async def _find_locked(self, res_type: str, criteria: str) -> list[tuple[int, str]]:
        params = parse_criteria(criteria, "criteria")
        await lock_criteria(self.repo.conn, res_type, params)
        return await self.conditional.find(self.repo.conn, res_type, params, limit=2)

    async def _rewrite(self, entry: Entry, ids: dict[str, str]) -> None:
        resource: dict[str, Any] = entry.resource  # type: ignore[assignment]
        pending: list[str] = []

        def replace(reference: str) -> str | None:
            if reference in ids:
                return ids[reference]
            if reference.startswith("urn:uuid:") or reference.startswith("urn:oid:"):
                raise _at(entry, FhirError(Category.INCORRECT, f"reference '{reference}' matches no fullUrl"))
            if "?" in reference and not reference.startswith("#"):
                pending.append(reference)
            return None

        rewrite_references(resource, replace)
        if pending:
            await self.repo.flush()  # earlier entries of this bundle are searchable
            resolved = {
                ref: await self._guard(entry, self.conditional.resolve(self.repo.conn, ref))
                for ref in pending
            }
            rewrite_references(resource, resolved.get)

    async def _execute(self, entry: Entry, ids: dict[str, str]) -> Outcome:
        repo = self.repo
        res_type = entry.res_type
        if res_type is None:
            raise FhirError(Category.INCORRECT, "request.url must name a resource type")
        if entry.method == "POST":
            assert entry.res_id is not None
            current = await repo.current(res_type, entry.res_id) if entry.if_none_exist else None
            if current is not None and not current.deleted:
                return Outcome(200, current)
            return Outcome(
                201, await repo.create(res_type, _resource(entry), res_id=entry.res_id, validated=True)
            )
        if entry.method == "PUT":
            assert entry.res_id is not None
            version, created = await repo.update(
                res_type, entry.res_id, _resource(entry), if_match=entry.if_match, validated=True
            )
            return Outcome(201 if created else 200, version)
        if entry.method == "PATCH":
            apply = applier(parse_patch(_patch_document(entry)))
            if entry.conditional:
                return Outcome(
                    200,
                    await self.conditional.patch(repo, res_type, entry.query, apply, if_match=entry.if_match),
                )
            assert entry.res_id is not None
            return Outcome(200, await repo.patch(res_type, entry.res_id, apply, if_match=entry.if_match))
        if entry.method == "DELETE":
            if entry.conditional:
                await self.conditional.delete(repo, res_type, entry.query, multiple=True)
                return Outcome(204)
            assert entry.res_id is not None
            await repo.delete(res_type, entry.res_id, if_match=entry.if_match)
            return Outcome(204)
        return await self._get(entry)

    async def _get(self, entry: Entry) -> Outcome:
        assert entry.res_type is not None
        if entry.res_id is None or entry.res_id.startswith("_search"):
            if self.searcher is None:
                raise FhirError(Category.UNSUPPORTED, "search is not available")
            params = parse_qsl(entry.query, keep_blank_values=True)
            return Outcome(200, body=await self.searcher(self.repo.conn, entry.res_type, params))
        if entry.version is not None:
            if not entry.version.isdigit():
                raise FhirError(Category.NOT_FOUND, f"version '{entry.version}' is not known")
            version = await self.repo.vread(entry.res_type, entry.res_id, int(entry.version))
        else:
            version = await self.repo.read(entry.res_type, entry.res_id)
        if entry.if_none_match and version_from_etag(entry.if_none_match, "ifNoneMatch") == version.version:
            return Outcome(304)
        return Outcome(200, body=version.body)

    async def _guard(self, entry: Entry, awaitable: Any) -> Any:
        try:
            return await awaitable
        except FhirError as exc:
            raise _at(entry, exc) from None

    # -- batch ------------------------------------------------------------------------------------

    async def batch(self, entries: list[Entry], include_resource: bool) -> list[dict[str, Any]]:
        """Each entry on its own; a failure becomes that entry's status and OperationOutcome."""
        results: list[dict[str, Any]] = []
        for entry in entries:
            try:
                self._validate(entry)
                async with self.repo.conn.transaction():
                    if entry.method in {"POST", "PUT"}:
                        await self._assign_ids([entry])
                        await self._rewrite(entry, {})
                    outcome = await self._guard(entry, self._execute(entry, {}))
                results.append(outcome.response(include_resource))
            except FhirError as exc:
                outcome_json = to_outcome(exc.category, exc.issues)
                status = f"{exc.status} {HTTPStatus(exc.status).phrase}"
                results.append({"response": {"status": status, "outcome": outcome_json}})
        return results


def _patch_document(entry: Entry) -> bytes:
    """A JSON Patch in a bundle is a Binary resource (contentType application/json-patch+json)."""
    resource = entry.resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        data = resource.get("data")
        if not isinstance(data, str):
            raise FhirError(
                Category.INCORRECT, "the Binary patch has no data", expression=[f"{entry.path}.resource.data"]
            )
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise FhirError(
                Category.MALFORMED, "Binary.data is not base64", expression=[f"{entry.path}.resource.data"]
            ) from None
    if isinstance(resource, list):
        return fhirjson.dumps(resource)
    raise FhirError(
        Category.UNSUPPORTED,
        "PATCH entries take a Binary resource holding a JSON Patch",
        expression=[f"{entry.path}.resource"],
    )


def _resource(entry: Entry) -> dict[str, Any]:
    assert isinstance(entry.resource, dict)
    return entry.resource


def _locate(entry: Entry, expression: str, element: str) -> str:
    """``Patient.name[0]`` of entry 3 -> ``Bundle.entry[3].resource.name[0]``."""
    if element == "resource" and entry.res_type and expression.startswith(entry.res_type):
        return f"{entry.path}.resource{expression[len(entry.res_type) :]}"
    return expression


def _at(entry: Entry, exc: FhirError, element: str = "") -> FhirError:
    """Name the entry in each issue; element paths inside the resource become Bundle paths."""
    if any(issue.diagnostics.startswith("Bundle.entry[") for issue in exc.issues):
        return exc  # already located (nested guard)

    def locate(expression: str) -> str:
        if element == "resource" and entry.res_type and expression.startswith(entry.res_type):
            return f"{entry.path}.resource{expression[len(entry.res_type) :]}"
        return expression

    issues = [
        Issue(
            f"{entry.path} ({entry.method} {entry.url}): {issue.diagnostics}",
            tuple(locate(e) for e in issue.expression) or (entry.path,),
            issue.code,
            issue.severity,
        )
        for issue in exc.issues
    ]
    return FhirError(exc.category, issues=issues, headers=exc.headers)
