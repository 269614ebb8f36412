"""Resource dict -> typed index rows, using the registry's compiled expressions.

:func:`extract` returns ``{table: [(ph, grp, *values), ...]}``; the indexer adds the ``rid``.
``grp`` is NULL except for composite parameters, whose component rows share a group number per
composite root node (an Observation, or one of its components) so the compiler can join them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from phix.search import date, number, quantity, reference, string, token, uri
from phix.search.model import Node
from phix.search.registry import Registry, SearchParam

Rows = dict[str, list[tuple[Any, ...]]]

TYPE_MODULES: dict[str, ModuleType] = {
    "string": string,
    "token": token,
    "date": date,
    "number": number,
    "quantity": quantity,
    "reference": reference,
    "uri": uri,
}
TABLES: tuple[str, ...] = tuple(m.TABLE for m in TYPE_MODULES.values())


def _values(ptype: str, param: SearchParam, nodes: list[Node]) -> list[tuple[Any, ...]]:
    if ptype == "string":
        return string.extract(nodes, param.normalizer)
    extractor: Callable[[list[Node]], list[tuple[Any, ...]]] = TYPE_MODULES[ptype].extract
    return extractor(nodes)


def _add(rows: Rows, table: str, ph: int, grp: int | None, values: list[tuple[Any, ...]]) -> None:
    if values:
        bucket = rows.setdefault(table, [])
        bucket.extend((ph, grp, *v) for v in values)


def _composite(rows: Rows, param: SearchParam, resource: dict[str, Any], root_type: str) -> None:
    assert param.walker is not None
    group = 0
    for root in param.walker([(resource, root_type)]):
        parts = []
        for component in param.components:
            values = _values(component.type, param, component.walker([root]))
            if not values:
                break
            parts.append((component.type, values))
        else:
            for i, (ctype, values) in enumerate(parts):
                _add(rows, TYPE_MODULES[ctype].TABLE, param.sub_hash(f"#{i}"), group, values)
            group += 1


def extract(registry: Registry, res_type: str, resource: dict[str, Any]) -> Rows:
    rows: Rows = {}
    root: list[Node] = [(resource, res_type)]
    for param in registry.params_for(res_type).values():
        if param.walker is None:
            continue
        if param.keys is not None and param.keys.isdisjoint(resource):
            continue
        if param.type == "composite":
            _composite(rows, param, resource, res_type)
            continue
        nodes = param.walker(root)
        if not nodes:
            continue
        _add(rows, TYPE_MODULES[param.type].TABLE, param.hash, None, _values(param.type, param, nodes))
        if param.type == "token":
            _add(rows, token.TABLE, param.sub_hash(token.OF_TYPE), None, token.extract_of_type(nodes))
        elif param.type == "reference":
            _add(
                rows,
                token.TABLE,
                param.sub_hash(reference.IDENTIFIER),
                None,
                reference.extract_identifiers(nodes),
            )
    return rows
