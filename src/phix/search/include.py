"""``_include`` and ``_revinclude`` (with ``:iterate`` and ``*``), answered from the reference index.

Plain specs apply to the page's matches; ``:iterate`` specs are applied again to what the previous
round included, up to :data:`MAX_ROUNDS` rounds and :data:`MAX_INCLUDED` resources in total.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from phix.search.errors import UnknownParameter, bad_value
from phix.search.parse import IncludeSpec
from phix.search.registry import Registry
from phix.search.sql import Sql

MAX_ROUNDS = 4
MAX_INCLUDED = 1000


@dataclass(frozen=True)
class Row:
    rid: int
    res_type: str
    res_id: str
    body: bytes


def _hashes(registry: Registry, spec: IncludeSpec, source_types: set[str]) -> list[int]:
    """Hashes of the reference parameters a spec follows, for the given source types."""
    sources = source_types if spec.source == "*" else {spec.source} & source_types
    hashes: list[int] = []
    for res_type in sorted(sources):
        params = registry.params_for(res_type)
        if spec.param == "*":
            hashes.extend(p.hash for p in params.values() if p.type == "reference" and p.walker is not None)
            continue
        param = params.get(spec.param)
        if param is None or param.type != "reference":
            raise UnknownParameter(
                f"_include={spec}", f"{spec.param} is not a reference parameter of {res_type}"
            )
        hashes.append(param.hash)
    return hashes


def validate(registry: Registry, specs: list[IncludeSpec]) -> None:
    for spec in specs:
        if spec.source != "*" and not registry.model.is_resource_type(spec.source):
            raise bad_value("_include", str(spec), f"unknown resource type {spec.source}")
        if spec.source != "*":
            _hashes(registry, spec, {spec.source})


def _local(sql: Sql, a: str, base_url: str | None) -> str:
    if base_url:
        return f"({a}.target_url IS NULL OR {a}.target_url = {sql.bind(base_url.rstrip('/'), 'text')})"
    return f"{a}.target_url IS NULL"


async def _forward(
    conn: asyncpg.Connection, hashes: list[int], rows: list[Row], target: str | None, base_url: str | None
) -> list[Row]:
    sql = Sql()
    rids = sql.bind([r.rid for r in rows], "bigint[]")
    phs = sql.bind(hashes, "bigint[]")
    target_filter = f" AND i.target_type = {sql.bind(target, 'text')}" if target else ""
    query = (
        "SELECT DISTINCT t.rid, t.res_type, t.res_id, t.body FROM search_reference i"
        " JOIN resources t ON t.res_type = i.target_type AND t.res_id = i.target_id"
        f" WHERE i.rid = ANY({rids}) AND i.ph = ANY({phs}){target_filter} AND {_local(sql, 'i', base_url)}"
        f" AND NOT t.deleted LIMIT {MAX_INCLUDED}"
    )
    return [Row(*rec) for rec in await conn.fetch(query, *sql.args)]


async def _reverse(
    conn: asyncpg.Connection, hashes: list[int], rows: list[Row], base_url: str | None
) -> list[Row]:
    sql = Sql()
    phs = sql.bind(hashes, "bigint[]")
    types = sql.bind([r.res_type for r in rows], "text[]")
    ids = sql.bind([r.res_id for r in rows], "text[]")
    query = (
        "SELECT DISTINCT s.rid, s.res_type, s.res_id, s.body FROM search_reference i"
        " JOIN resources s ON s.rid = i.rid"
        f" JOIN unnest({types}, {ids}) AS p(res_type, res_id)"
        " ON i.target_type = p.res_type AND i.target_id = p.res_id"
        f" WHERE i.ph = ANY({phs}) AND {_local(sql, 'i', base_url)} AND NOT s.deleted LIMIT {MAX_INCLUDED}"
    )
    return [Row(*rec) for rec in await conn.fetch(query, *sql.args)]


async def _apply(
    conn: asyncpg.Connection, registry: Registry, spec: IncludeSpec, rows: list[Row], base_url: str | None
) -> list[Row]:
    if not rows:
        return []
    if spec.reverse:
        sources = set(registry.resource_types()) if spec.source == "*" else {spec.source}
        hashes = _hashes(registry, spec, sources)
        if spec.target:
            rows = [r for r in rows if r.res_type == spec.target]
        return await _reverse(conn, hashes, rows, base_url) if hashes and rows else []
    sources = {r.res_type for r in rows}
    hashes = _hashes(registry, spec, sources)
    rows = [r for r in rows if spec.source in ("*", r.res_type)]
    return await _forward(conn, hashes, rows, spec.target, base_url) if hashes and rows else []


async def included(
    conn: asyncpg.Connection,
    registry: Registry,
    specs: list[IncludeSpec],
    matches: list[Row],
    base_url: str | None,
) -> list[Row]:
    """The resources the include specs add to a page (excluding the matches themselves)."""
    seen = {r.rid for r in matches}
    out: list[Row] = []
    frontier = matches
    for round_number in range(MAX_ROUNDS):
        active = [s for s in specs if round_number == 0 or s.iterate]
        if not active or not frontier:
            break
        found: list[Row] = []
        for spec in active:
            for row in await _apply(conn, registry, spec, frontier, base_url):
                if row.rid not in seen:
                    seen.add(row.rid)
                    found.append(row)
        out.extend(found)
        if len(out) >= MAX_INCLUDED:
            break
        frontier = found
    return out[:MAX_INCLUDED]
