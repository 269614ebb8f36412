"""Search criteria -> one SQL predicate over a ``resources`` row alias, with bind parameters only.

Each criterion becomes an ``EXISTS`` semi-join on the typed index table of its parameter (keyed by
the parameter hash), ``NOT EXISTS`` for ``:not`` and ``:missing=true``; comma-separated values OR
inside one sub-query; repeated parameters AND. Chains join ``search_reference`` to the target's
``resources`` row and recurse; ``_has`` joins the other way. ``_id`` and ``_lastUpdated`` are
answered from the ``resources`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phix.search import composite, date, reference, string, token
from phix.search.errors import UnknownParameter, bad_param, bad_value
from phix.search.escape import unescape
from phix.search.extract import TYPE_MODULES
from phix.search.parse import Criterion, Has, Link, Name
from phix.search.registry import COLUMN_PARAMS, Registry, SearchParam
from phix.search.sql import Sql, all_of, any_of

MAX_CHAIN_DEPTH = 4
# How well a criterion drives a query from its index (lower first): equality lookups return rids
# in order from the (ph, value..., rid) indexes; prefixes and ranges need a sort; substrings scan.
_RANKS: dict[Any, int] = {
    "token": 0,
    "reference": 0,
    "uri": 0,
    ("token", "text"): 1,
    ("uri", "below"): 1,
    "string": 1,
    "quantity": 1,
    "number": 1,
    "date": 2,
    ("string", "contains"): 3,
}


@dataclass(frozen=True)
class Compiled:
    """One top-level criterion: its predicate on ``r`` and what the page query may do with it."""

    sql: str
    # ``SELECT a.rid FROM <index table> a WHERE ...``: the rids the criterion matches, when it is a
    # plain positive index criterion (so it can drive the query instead of the resources table)
    driver: str | None
    rid_only: bool  # the predicate reads nothing of ``r`` but ``r.rid``
    rank: int = 0  # driver preference: 0 equality lookups, 1 prefix/range, 2 dates, 3 scans


@dataclass
class Compiler:
    sql: Sql
    registry: Registry
    base_url: str | None = None
    lenient: bool = False
    ignored: list[str] = field(default_factory=list)
    _driver: str | None = None
    _last_driver: str | None = None
    _driver_rank: int = 0
    _reads_resource: bool = False

    # --------------------------------------------------------------------------- entry points

    def criteria(self, types: tuple[str, ...], r: str, criteria: list[Criterion]) -> list[Compiled]:
        """One predicate per criterion (to AND); unknown parameters are skipped when lenient."""
        out = []
        for item, values, every in self._fold(types, criteria):
            self._driver, self._reads_resource = None, False
            try:
                predicate = self.criterion(types, r, item.name, values, 0, every=every)
            except UnknownParameter:
                if not self.lenient:
                    raise
                self.ignored.append(item.raw_name)
                continue
            out.append(Compiled(predicate, self._driver, not self._reads_resource, self._driver_rank))
        return out

    def _fold(
        self, types: tuple[str, ...], criteria: list[Criterion]
    ) -> list[tuple[Criterion, tuple[str, ...], bool]]:
        """(criterion, values, every): repeated single-value conditions on a parameter with at most
        one row per resource (``birthdate=ge1957-11-01&birthdate=lt1957-12-01``) become one
        condition on that row (``every``), which an index range scan answers; for repeating
        elements each condition may be met by a different value, so they stay apart."""
        out: list[tuple[Criterion, tuple[str, ...], bool]] = []
        folded: dict[str, int] = {}
        for item in criteria:
            name = item.name
            if name.has is None and len(name.chain) == 1 and name.chain[0].modifier is None:
                code = name.chain[0].code
                if len(item.values) == 1 and self._single(types, code):
                    if code in folded:
                        first, values, _ = out[folded[code]]
                        out[folded[code]] = (first, (*values, *item.values), True)
                        continue
                    folded[code] = len(out)
            out.append((item, item.values, False))
        return out

    def _single(self, types: tuple[str, ...], code: str) -> bool:
        found = [self.registry.param(t, code) for t in types]
        return bool(found) and all(p is not None and p.single for p in found)

    def criterion(
        self,
        types: tuple[str, ...],
        r: str,
        name: Name,
        values: tuple[str, ...],
        depth: int,
        *,
        every: bool = False,
    ) -> str:
        if depth > MAX_CHAIN_DEPTH:
            raise bad_param(str(name), f"chains and _has may nest at most {MAX_CHAIN_DEPTH} levels")
        if name.has is not None:
            return self._has(types, r, name.has, values, depth)
        if len(name.chain) > 1:
            return self._chain(types, r, name.chain, values, depth)
        link = name.chain[0]
        params = self.params(types, link.code)
        if params[0].column is not None:
            return self._column(params[0], r, link, values)
        if link.modifier == "missing":
            return self._missing(params, r, link, values)
        self._last_driver = None
        predicate = self._indexed(params, r, link, values, every=every)
        if depth == 0:
            self._driver = self._last_driver
            self._driver_rank = _RANKS.get((params[0].type, link.modifier), _RANKS.get(params[0].type, 1))
        return predicate

    def local(self, a: str) -> str:
        """The reference row points at this server (relative, or our own absolute base)."""
        if self.base_url:
            base = self.sql.bind(self.base_url.rstrip("/"), "text")
            return f"({a}.target_url IS NULL OR {a}.target_url = {base})"
        return f"{a}.target_url IS NULL"

    def params(self, types: tuple[str, ...], code: str) -> list[SearchParam]:
        found = [self.registry.param(t, code) for t in types]
        if not found or any(p is None for p in found):
            missing = [t for t, p in zip(types, found, strict=True) if p is None]
            raise UnknownParameter(code, f"unknown for {', '.join(missing) or 'these types'}")
        params = [p for p in found if p is not None]
        if params[0].unsupported:
            raise UnknownParameter(code, params[0].unsupported)
        if len({p.type for p in params}) > 1:
            raise bad_param(code, "has different types on the searched resource types")
        return params

    @staticmethod
    def ph(sql: Sql, a: str, hashes: list[int]) -> str:
        unique = list(dict.fromkeys(hashes))
        if len(unique) == 1:
            return f"{a}.ph = {sql.bind(unique[0], 'bigint')}"
        return f"{a}.ph = ANY({sql.bind(unique, 'bigint[]')})"

    # --------------------------------------------------------------------------- plain parameters

    def _column(self, param: SearchParam, r: str, link: Link, values: tuple[str, ...]) -> str:
        self._reads_resource = True
        sql = self.sql
        if link.modifier == "missing":
            return "false" if _missing_flag(link, values) else "true"
        if param.column == "res_id":
            if link.modifier not in (None, "not"):
                raise UnknownParameter(str(link), f"modifier {link.modifier!r} is not supported")
            ids = [unescape(v) for v in values]
            if not all(ids):
                raise bad_value(param.code, ",".join(values), "empty id")
            clause = f"{r}.res_id = ANY({sql.bind(ids, 'text[]')})"
            return f"NOT {clause}" if link.modifier == "not" else clause
        if link.modifier is not None:
            raise UnknownParameter(str(link), f"modifier {link.modifier!r} is not supported")
        parsed = [date.parse(param.code, v, None) for v in values]
        return any_of([date.range_condition(sql, f"{r}.last_updated", "", v, point=True) for v in parsed])

    def _missing(self, params: list[SearchParam], r: str, link: Link, values: tuple[str, ...]) -> str:
        missing = _missing_flag(link, values)
        first = params[0]
        if first.type == "composite":
            table = TYPE_MODULES[first.components[0].type].TABLE
            hashes = [p.sub_hash("#0") for p in params]
        else:
            table, hashes = TYPE_MODULES[first.type].TABLE, [p.hash for p in params]
        a = self.sql.alias()
        exists = (
            f"EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.rid = {r}.rid AND {self.ph(self.sql, a, hashes)})"
        )
        return f"NOT {exists}" if missing else exists

    def _indexed(
        self, params: list[SearchParam], r: str, link: Link, values: tuple[str, ...], *, every: bool = False
    ) -> str:
        sql, first, modifier = self.sql, params[0], link.modifier
        if first.type == "composite":
            return composite.condition(self, params, r, values)
        module = TYPE_MODULES[first.type]
        table, hashes = module.TABLE, [p.hash for p in params]
        a = sql.alias()
        if first.type == "reference":
            if modifier == "identifier":
                table, hashes = token.TABLE, [p.sub_hash(reference.IDENTIFIER) for p in params]
                preds = [token.match(sql, a, token.parse(first.code, v, None), None) for v in values]
            else:
                type_modifier = self._type_modifier(first, modifier)
                preds = [
                    reference.match(
                        sql,
                        a,
                        reference.parse(first.code, v, type_modifier, first.targets, self.base_url),
                        self.base_url,
                    )
                    for v in values
                ]
        else:
            if modifier is not None and modifier not in module.MODIFIERS:
                raise UnknownParameter(str(link), f"modifier {modifier!r} is not supported for {first.type}")
            if first.type == "token" and modifier == "of-type":
                hashes = [p.sub_hash(token.OF_TYPE) for p in params]
            preds = [self._match(first, a, v, modifier) for v in values]
        ph = self.ph(sql, a, hashes)
        matched = all_of(preds) if every else any_of(preds)
        body = f"SELECT 1 FROM {table} {a} WHERE {a}.rid = {r}.rid AND {ph} AND {matched}"
        if modifier == "not":
            return f"NOT EXISTS ({body})"
        self._last_driver = f"SELECT {a}.rid FROM {table} {a} WHERE {ph} AND {matched}"
        return f"EXISTS ({body})"

    def _match(self, param: SearchParam, a: str, raw: str, modifier: str | None) -> str:
        ptype = param.type
        if ptype == "string":
            return string.match(
                self.sql, a, string.parse(param.code, raw, modifier, param.normalizer), modifier
            )
        if ptype == "token" and modifier == "not":
            return token.match(self.sql, a, token.parse(param.code, raw, None), None)
        module = TYPE_MODULES[ptype]
        value: Any = module.parse(param.code, raw, modifier)
        result: str = module.match(self.sql, a, value, modifier)
        return result

    def _type_modifier(self, param: SearchParam, modifier: str | None) -> str | None:
        if modifier is None or modifier == "missing":
            return None
        if not self.registry.model.is_resource_type(modifier):
            raise UnknownParameter(f"{param.code}:{modifier}", f"modifier {modifier!r} is not supported")
        if param.targets and modifier not in param.targets:
            raise bad_param(f"{param.code}:{modifier}", f"{modifier} is not a target of {param.code}")
        return modifier

    # --------------------------------------------------------------------------- chains and _has

    def _chain(
        self, types: tuple[str, ...], r: str, chain: tuple[Link, ...], values: tuple[str, ...], depth: int
    ) -> str:
        first, rest = chain[0], chain[1:]
        params = self.params(types, first.code)
        if params[0].type != "reference":
            raise bad_param(first.code, "only reference parameters can be chained")
        if first.modifier:
            targets: tuple[str, ...] = (self._type_modifier(params[0], first.modifier) or first.modifier,)
        else:
            declared = {t for p in params for t in p.targets} or set(self.registry.resource_types())
            targets = tuple(sorted(t for t in declared if self.registry.param(t, rest[0].code) is not None))
            if not targets:
                raise UnknownParameter(
                    ".".join(str(x) for x in chain), f"no target of {first.code} has {rest[0].code}"
                )
        sql = self.sql
        a, t = sql.alias("c"), sql.alias("t")
        inner = self.criterion(targets, t, Name(chain=rest), values, depth + 1)
        type_filter = (
            f"{a}.target_type = {sql.bind(targets[0], 'text')}"
            if len(targets) == 1
            else f"{a}.target_type = ANY({sql.bind(list(targets), 'text[]')})"
        )
        return (
            f"EXISTS (SELECT 1 FROM search_reference {a} JOIN resources {t}"
            f" ON {t}.res_type = {a}.target_type AND {t}.res_id = {a}.target_id"
            f" WHERE {a}.rid = {r}.rid AND {self.ph(sql, a, [p.hash for p in params])} AND {type_filter}"
            f" AND {self.local(a)} AND NOT {t}.deleted AND {inner})"
        )

    def _has(self, types: tuple[str, ...], r: str, has: Has, values: tuple[str, ...], depth: int) -> str:
        self._reads_resource = True
        if not self.registry.model.is_resource_type(has.type):
            raise bad_param(f"_has:{has.type}", f"unknown resource type {has.type!r}")
        param = self.registry.param(has.type, has.param)
        if param is None or param.type != "reference":
            raise UnknownParameter(
                f"_has:{has.type}:{has.param}", f"{has.param} is not a reference of {has.type}"
            )
        if param.targets and not set(types) & set(param.targets):
            raise bad_param(f"_has:{has.type}:{has.param}", f"{has.param} cannot point to {', '.join(types)}")
        sql = self.sql
        a = sql.alias("h")
        inner_name = has.inner
        reads_source = inner_name.has is not None or (
            len(inner_name.chain) == 1 and inner_name.chain[0].code in COLUMN_PARAMS
        )
        head = (
            f"SELECT 1 FROM search_reference {a} WHERE {a}.ph = {sql.bind(param.hash, 'bigint')}"
            f" AND {a}.target_id = {r}.res_id AND {a}.target_type = {r}.res_type AND {self.local(a)}"
        )
        if not reads_source:
            # index rows exist for current resources only: the source's rid is all we need
            inner = self.criterion((has.type,), a, inner_name, values, depth + 1)
            return f"EXISTS ({head} AND {inner})"
        s = sql.alias("s")
        inner = self.criterion((has.type,), s, inner_name, values, depth + 1)
        return (
            f"EXISTS ({head} AND EXISTS (SELECT 1 FROM resources {s}"
            f" WHERE {s}.rid = {a}.rid AND NOT {s}.deleted AND {inner}))"
        )

    # --------------------------------------------------------------------------- compartments

    def compartment(self, types: tuple[str, ...], r: str, compartment: tuple[str, str]) -> str:
        """Membership of ``r`` in ``compartment`` = (type, id), per the CompartmentDefinition.

        It reads ``r.res_type``/``r.res_id``: a compartment search is never driven by an index."""
        comp_type, comp_id = compartment
        sql = self.sql
        hashes = []
        for res_type in types:
            for code in self.registry.compartment_params(comp_type, res_type):
                param = self.registry.param(res_type, code)
                if param is not None and param.type == "reference":
                    hashes.append(param.hash)
        clauses = []
        if hashes:
            a = sql.alias("m")
            clauses.append(
                f"EXISTS (SELECT 1 FROM search_reference {a} WHERE {a}.rid = {r}.rid"
                f" AND {self.ph(sql, a, hashes)} AND {a}.target_id = {sql.bind(comp_id, 'text')}"
                f" AND {a}.target_type = {sql.bind(comp_type, 'text')} AND {self.local(a)})"
            )
        if comp_type in types:  # the compartment's own resource belongs to it
            clauses.append(
                f"({r}.res_type = {sql.bind(comp_type, 'text')} AND {r}.res_id = {sql.bind(comp_id, 'text')})"
            )
        return any_of(clauses)


def _missing_flag(link: Link, values: tuple[str, ...]) -> bool:
    if len(values) != 1 or values[0] not in ("true", "false"):
        raise bad_value(str(link), ",".join(values), "expected true or false")
    return values[0] == "true"


__all__ = ["Compiler", "all_of", "any_of"]
