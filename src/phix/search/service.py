"""The search engine's entry points: :func:`find` (conditional operations) and :func:`search`.

One SQL statement per page: the criteria compile to predicates over ``resources r`` (see
:mod:`phix.search.compiler`), sort keys are computed per matching row, and the keyset condition
of the cursor selects the page (:mod:`phix.search.paging`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from phix.errors import Category, FhirError
from phix.search import elements as subsetting
from phix.search import include, paging
from phix.search.bundle_page import Transform, entry, links, searchset
from phix.search.compiler import Compiled, Compiler
from phix.search.include import Row
from phix.search.parse import Query, parse_query
from phix.search.registry import Registry
from phix.search.sql import Sql, all_of

_CUSTOM_PLANS = "SET LOCAL plan_cache_mode = force_custom_plan"


@asynccontextmanager
async def custom_plans(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Plan each search statement for its own values.

    asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic plan that
    ignores the bound values, which is disastrous for index searches whose selectivity depends
    entirely on them (a common code vs a rare one). ``SET LOCAL`` needs a transaction: the caller's
    if there is one (it then lasts to its end, which only costs planning time), else a read-only
    one of our own (which also gives the page, total and includes one snapshot).
    """
    if conn.is_in_transaction():
        await conn.execute(_CUSTOM_PLANS)
        yield
        return
    await conn.execute(f"BEGIN READ ONLY; {_CUSTOM_PLANS}")
    try:
        yield
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


@dataclass
class _Where:
    compiler: Compiler
    clause: str  # the whole predicate on ``resources r``
    types: tuple[str, ...]
    criteria: list[Compiled]
    compartment: bool
    type_param: str  # the bound placeholder of the searched type(s)

    def type_filter(self, alias: str) -> str:
        if len(self.types) == 1:
            return f"{alias}.res_type = {self.type_param}"
        return f"{alias}.res_type = ANY({self.type_param})"

    def driven(self, keys: list[paging.OrderKey]) -> tuple[str, list[str]] | None:
        """(driver, other predicates) when the page can be read from an index table first.

        Index rows exist only for current resources and their hash implies the resource type, so
        a positive index criterion yields exactly the matching rids; reading ``resources`` to
        re-check type and deletion would cost a probe per candidate.
        """
        if (
            self.compartment
            or not all(c.rid_only for c in self.criteria)
            or not all(k.rid_only for k in keys)
        ):
            return None
        # Only equality lookups: their index returns rids in order, so the first page stops early.
        # A prefix or range may match most of a type; the planner then does better walking
        # resources in rid order and probing (the generic form).
        drivers = [c for c in self.criteria if c.driver is not None and c.rank == 0]
        if not drivers:
            return None
        best = min(drivers, key=lambda c: c.rank)
        assert best.driver is not None
        return best.driver, [c.sql for c in self.criteria if c is not best]


def _types(
    registry: Registry, res_type: str | None, query: Query, compartment: tuple[str, str] | None
) -> tuple[str, ...]:
    known = registry.model
    if res_type is not None and res_type != "*":
        if not known.is_resource_type(res_type):
            raise FhirError(Category.NOT_FOUND, f"Unknown resource type '{res_type}'", code="not-supported")
        if query.types and query.types != [res_type]:
            raise FhirError(Category.INCORRECT, "_type is only allowed in a system-level search")
        return (res_type,)
    if query.types:
        for name in query.types:
            if not known.is_resource_type(name):
                raise FhirError(Category.INCORRECT, f"_type: unknown resource type '{name}'")
        return tuple(dict.fromkeys(query.types))
    if compartment is not None:
        return tuple(registry.compartment_types(compartment[0]))
    return tuple(sorted(registry.resource_types()))


def _where(
    sql: Sql,
    registry: Registry,
    types: tuple[str, ...],
    query: Query,
    *,
    base_url: str | None,
    compartment: tuple[str, str] | None,
    lenient: bool,
) -> _Where:
    compiler = Compiler(sql, registry, base_url, lenient)
    type_param = sql.bind(types[0], "text") if len(types) == 1 else sql.bind(list(types), "text[]")
    clauses = [
        f"r.res_type = {type_param}" if len(types) == 1 else f"r.res_type = ANY({type_param})",
        "NOT r.deleted",
    ]
    if compartment is not None:
        if compartment[0] not in registry.compartments():
            raise FhirError(
                Category.NOT_FOUND, f"No {compartment[0]} compartment is defined", code="not-supported"
            )
        clauses.append(compiler.compartment(types, "r", compartment))
    criteria = compiler.criteria(types, "r", query.criteria)
    clauses.extend(c.sql for c in criteria)
    return _Where(compiler, all_of(clauses), types, criteria, compartment is not None, type_param)


async def find(
    conn: asyncpg.Connection,
    registry: Registry,
    res_type: str,
    params: list[tuple[str, str]],
    *,
    limit: int | None = None,
    base_url: str | None = None,
) -> list[tuple[int, str]]:
    """(rid, id) of the current resources of ``res_type`` matching ``params`` (result parameters ignored)."""
    query = parse_query(params)
    sql = Sql()
    where = _where(sql, registry, (res_type,), query, base_url=base_url, compartment=None, lenient=False)
    statement = f"SELECT r.rid, r.res_id FROM resources r WHERE {where.clause} ORDER BY r.rid"
    if limit is not None:
        statement += f" LIMIT {sql.bind(limit, 'bigint')}"
    async with custom_plans(conn):
        records = await conn.fetch(statement, *sql.args)
    return [(rec[0], rec[1]) for rec in records]


def _transform(query: Query) -> tuple[Transform | None, Transform | None]:
    """(for matches, for includes)."""
    summary = query.summary if query.summary not in (None, "false", "count") else None
    if query.elements:
        names = query.elements
        return (lambda r: subsetting.elements(r, names)), (
            (lambda r: subsetting.summary(r, summary)) if summary else None
        )
    if summary:
        return (lambda r: subsetting.summary(r, summary)), (lambda r: subsetting.summary(r, summary))
    return None, None


async def _total(conn: asyncpg.Connection, mode: str, clause: str, args: list[Any]) -> int:
    if mode == "estimate":
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM resources r WHERE {clause}", *args)
        data = orjson.loads(plan) if isinstance(plan, str | bytes) else plan
        return int(data[0]["Plan"]["Plan Rows"])
    count: int = await conn.fetchval(f"SELECT count(*) FROM resources r WHERE {clause}", *args)
    return count


async def search(
    conn: asyncpg.Connection,
    registry: Registry,
    res_type: str | None,
    params: list[tuple[str, str]],
    *,
    base_url: str,
    compartment: tuple[str, str] | None = None,
    lenient: bool = False,
    default_count: int,
    max_count: int,
) -> dict[str, Any]:
    """The searchset Bundle of one page (resources embedded as ``orjson.Fragment`` of stored bytes)."""
    base_url = base_url.rstrip("/")
    query = parse_query(params)
    types = _types(registry, res_type, query, compartment)
    include.validate(registry, query.includes)
    sql = Sql()
    where = _where(sql, registry, types, query, base_url=base_url, compartment=compartment, lenient=lenient)
    where_args = len(sql.args)
    count = min(default_count if query.count is None else query.count, max_count)
    keys = paging.order_keys(where.compiler, types, "r", query.sort)
    values, backward = paging.decode_cursor(query.cursor, keys) if query.cursor else (None, False)

    plan = _Plan(query, where, keys, values, backward, count, where_args)
    async with custom_plans(conn):
        return await _page(conn, registry, plan, params, base_url, _path(res_type, compartment))


@dataclass
class _Plan:
    query: Query
    where: _Where
    keys: list[paging.OrderKey]
    cursor: list[Any] | None  # key values of the cursor position
    backward: bool
    count: int
    where_args: int  # bind parameters of the WHERE clause (the total query reuses them)


async def _page(
    conn: asyncpg.Connection,
    registry: Registry,
    plan: _Plan,
    params: list[tuple[str, str]],
    base_url: str,
    path: str,
) -> dict[str, Any]:
    query, where, keys, values, backward, count = (
        plan.query, plan.where, plan.keys, plan.cursor, plan.backward, plan.count
    )  # fmt: skip
    sql = where.compiler.sql
    rows: list[Row] = []
    positions: list[list[Any]] = []
    more = False
    if count > 0 and query.summary != "count":
        # The page is chosen on (rid, sort keys) only, which the covering index resources_type_rid
        # serves without touching the heap; the bodies are fetched for the page's rows alone.
        select = ", ".join(f"{k.expr} AS k{i}" for i, k in enumerate(keys))
        driven = where.driven(keys)
        if driven is None:
            matches = f"SELECT r.rid, {select} FROM resources r WHERE {where.clause}"
        else:
            driver, others = driven
            source = f"(SELECT DISTINCT d.rid FROM ({driver}) d) r"
            matches = f"SELECT r.rid, {select} FROM {source} WHERE {all_of(others)}"
        keyset = f" WHERE {paging.keyset(sql, keys, values, backward)}" if values is not None else ""
        order = paging.order_by(keys, backward)
        page = f"SELECT * FROM ({matches}) m{keyset} ORDER BY {order} LIMIT {sql.bind(count + 1, 'bigint')}"
        statement = (
            f"SELECT b.rid, b.res_type, b.res_id, b.body, q.* FROM ({page}) q"
            f" JOIN resources b ON b.rid = q.rid AND NOT b.deleted AND {where.type_filter('b')}"
            f" ORDER BY {paging.order_by(keys, backward, 'q.')}"
        )
        records = await conn.fetch(statement, *sql.args)
        more = len(records) > count
        records = records[:count]
        if backward:
            records.reverse()
        rows = [Row(rec[0], rec[1], rec[2], rec[3]) for rec in records]
        positions = [[rec[f"k{i}"] for i in range(len(keys))] for rec in records]

    total: int | None = None
    mode = query.total or ("accurate" if query.summary == "count" or count == 0 else None)
    if mode in ("accurate", "estimate"):
        total = await _total(conn, mode, where.clause, sql.args[: plan.where_args])
    elif mode is None and query.cursor is None and not more and count > 0:
        total = len(rows)  # the whole result fits on the first page

    next_cursor = previous_cursor = None
    if rows:
        has_next = backward or more
        has_previous = more if backward else values is not None
        if has_next:
            next_cursor = paging.encode_cursor(positions[-1], backward=False)
        if has_previous:
            previous_cursor = paging.encode_cursor(positions[0], backward=True)

    for_matches, for_includes = _transform(query)
    entries = [entry(base_url, row, "match", for_matches) for row in rows]
    if query.includes and rows:
        extra = await include.included(conn, registry, query.includes, rows, base_url)
        entries.extend(entry(base_url, row, "include", for_includes) for row in extra)

    ignored = set(where.compiler.ignored)
    used = [(k, v) for k, v in params if k not in ignored]
    page_links = links(
        base_url, path, used, cursor=query.cursor, next_cursor=next_cursor, previous_cursor=previous_cursor
    )
    return searchset(entries, page_links, total)


def _path(res_type: str | None, compartment: tuple[str, str] | None) -> str:
    if compartment is not None:
        return f"{compartment[0]}/{compartment[1]}/{res_type or '*'}"
    return res_type or ""
