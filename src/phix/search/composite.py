"""Composite parameters (``code-value-quantity=http://loinc.org|8480-6$gt100``).

Each component is indexed in its own type's table under the composite's derived hash
``<code>#<n>``; rows of one composite root (the Observation, or one of its components) share a
``grp`` number. A value ``a$b`` matches when one group has a row matching ``a`` in component 0 and a
row matching ``b`` in component 1, joined on (rid, grp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phix.search import extract as extraction
from phix.search import reference, string
from phix.search.errors import bad_value
from phix.search.escape import split_unescaped
from phix.search.registry import SearchParam
from phix.search.sql import any_of

if TYPE_CHECKING:
    from phix.search.compiler import Compiler


def _component_match(compiler: Compiler, ctype: str, code: str, a: str, raw: str, param: SearchParam) -> str:
    sql = compiler.sql
    if ctype == "reference":
        value = reference.parse(code, raw, None, (), compiler.base_url)
        return reference.match(sql, a, value, compiler.base_url)
    if ctype == "string":
        return string.match(sql, a, string.parse(code, raw, None, param.normalizer), None)
    module = extraction.TYPE_MODULES[ctype]
    parsed: Any = module.parse(code, raw, None)
    result: str = module.match(sql, a, parsed, None)
    return result


def condition(compiler: Compiler, params: list[SearchParam], r: str, values: tuple[str, ...]) -> str:
    sql = compiler.sql
    first = params[0]
    components = first.components
    alternatives = []
    for raw in values:
        parts = split_unescaped(raw, "$")
        if len(parts) != len(components):
            raise bad_value(first.code, raw, f"expected {len(components)} '$'-separated components")
        aliases = [sql.alias("k") for _ in components]
        joins = []
        where = [f"{aliases[0]}.rid = {r}.rid"]
        for i, (component, part, a) in enumerate(zip(components, parts, aliases, strict=True)):
            table = extraction.TYPE_MODULES[component.type].TABLE
            if i == 0:
                joins.append(f"{table} {a}")
            else:
                joins.append(f"JOIN {table} {a} ON {a}.rid = {aliases[0]}.rid AND {a}.grp = {aliases[0]}.grp")
            where.append(compiler.ph(sql, a, [p.sub_hash(f"#{i}") for p in params]))
            where.append(_component_match(compiler, component.type, first.code, a, part, first))
        alternatives.append(f"EXISTS (SELECT 1 FROM {' '.join(joins)} WHERE {' AND '.join(where)})")
    return any_of(alternatives)
