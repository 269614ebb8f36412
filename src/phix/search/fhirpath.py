"""A compiler for the FHIRPath subset used by SearchParameter expressions.

Expressions are parsed once at registry load and compiled, against the element type model, into
plain Python closures ("walkers") that map a list of typed nodes ``(json value, FHIR type)`` to a
list of typed nodes. No interpreter runs per resource: member access is a pre-resolved table of
JSON keys per input type (choice elements expand to ``valueQuantity`` ...), ``as``/``ofType`` keep
nodes of a type, ``where(resolve() is T)`` checks the reference's target type.

Supported: paths, ``|``, ``as``/``is`` (operator and function), ``ofType``, ``where``, ``exists``,
``empty``, ``not``, ``first``, ``resolve``, ``extension(url)``, ``=``/``!=``, ``and``/``or``,
string/boolean/number literals and ``$this``. Anything else raises :class:`UnsupportedExpression`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phix.search.model import QUANTITY_TYPES, UNKNOWN, ElementModel, Node
from phix.search.reference import reference_target_type

Walker = Callable[[list[Node]], list[Node]]


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath this compiler does not implement."""


# ---------------------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>!=|[().,|=])"
    r"|(?P<id>[A-Za-z_$][\w$]*|`[^`]+`))"
)


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Member:
    target: Any
    name: str


@dataclass(frozen=True)
class Call:
    target: Any  # None: called on the input
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise UnsupportedExpression(f"cannot tokenize {text[pos:]!r}")
        tokens.append(match.group(match.lastgroup or "id"))
        pos = match.end()
    return tokens


class _Parser:
    # Lowest to highest precedence of the binary operators we support.
    LEVELS: tuple[tuple[str, ...], ...] = (("or",), ("and",), ("=", "!="), ("|",), ("is", "as"))

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise UnsupportedExpression(f"expected {expected or 'more'} at token {self.pos}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        node = self.binary(0)
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek()!r}")
        return node

    def binary(self, level: int) -> Any:
        if level == len(self.LEVELS):
            return self.postfix()
        left = self.binary(level + 1)
        while self.peek() in self.LEVELS[level]:
            op = self.take()
            right = self.type_name() if op in ("is", "as") else self.binary(level + 1)
            left = Binary(op, left, right)
        return left

    def type_name(self) -> Ident:
        name = self.take()
        while self.peek() == ".":  # FHIR.Quantity, System.String
            self.take(".")
            name = self.take()
        return Ident(name)

    def postfix(self) -> Any:
        node = self.term()
        while self.peek() == ".":
            self.take(".")
            name = self.take()
            node = self.call(node, name) if self.peek() == "(" else Member(node, name)
        return node

    def call(self, target: Any, name: str) -> Call:
        self.take("(")
        args: list[Any] = []
        while self.peek() != ")":
            args.append(self.type_name() if name in ("is", "as", "ofType") else self.binary(0))
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return Call(target, name, tuple(args))

    def term(self) -> Any:
        token = self.take()
        if token == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if token.startswith("'"):
            return Literal(token[1:-1].replace("\\'", "'"))
        if token[0].isdigit():
            return Literal(float(token) if "." in token else int(token))
        if token in ("true", "false"):
            return Literal(token == "true")
        if self.peek() == "(":
            return self.call(None, token)
        return Ident(token.strip("`"))


def parse(expression: str) -> Any:
    return _Parser(expression).parse()


# -------------------------------------------------------------------------------------- compiler


def _flatten(value: Any, type_name: str, out: list[Node]) -> None:
    if isinstance(value, list):
        out.extend((v, type_name) for v in value if v is not None)
    elif value is not None:
        out.append((value, type_name))


def _type_matches(node_type: str, wanted: str) -> bool:
    if node_type == wanted or node_type.lower() == wanted.lower():
        return True
    return wanted == "Quantity" and node_type in QUANTITY_TYPES


class Compiler:
    """Compile expressions for one context type (a resource type or a backbone path)."""

    def __init__(self, model: ElementModel, context_type: str) -> None:
        self.model = model
        self.context_type = context_type

    def compile(self, expression: str) -> Walker:
        return self._compile(parse(expression), True)

    def _compile(self, node: Any, at_root: bool) -> Walker:
        if isinstance(node, Ident):
            return self._ident(node.name, at_root)
        if isinstance(node, Literal):
            value = node.value
            type_name = (
                "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "decimal"
            )
            return lambda _nodes: [(value, type_name)]
        if isinstance(node, Member):
            return self._member(self._compile(node.target, at_root), node.name)
        if isinstance(node, Call):
            return self._call(node, at_root)
        if isinstance(node, Binary):
            return self._binary(node, at_root)
        raise UnsupportedExpression(repr(node))

    def _ident(self, name: str, at_root: bool) -> Walker:
        if name == "$this" or (at_root and name in (self.context_type, "Resource", "DomainResource")):
            return lambda nodes: nodes
        return self._member(lambda nodes: nodes, name)

    def _member(self, source: Walker, name: str) -> Walker:
        model = self.model
        table: dict[str, tuple[tuple[str, str], ...]] = {}

        def walk(nodes: list[Node]) -> list[Node]:
            out: list[Node] = []
            for value, type_name in source(nodes):
                if not isinstance(value, dict):
                    continue
                keys = table.get(type_name)
                if keys is None:
                    keys = table[type_name] = model.children(type_name, name)
                for key, child_type in keys:
                    child = value.get(key)
                    if child is not None:
                        _flatten(child, child_type, out)
            return out

        return walk

    def _binary(self, node: Binary, at_root: bool) -> Walker:
        op = node.op
        left = self._compile(node.left, at_root)
        if op in ("as", "is"):
            return self._type_op(left, node.right.name, op == "is")
        right = self._compile(node.right, at_root)
        if op == "|":
            return lambda nodes: _union(left(nodes), right(nodes))
        if op in ("=", "!="):
            negate = op == "!="

            def compare(nodes: list[Node]) -> list[Node]:
                a, b = left(nodes), right(nodes)
                if not a or not b:
                    return []
                equal = len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=True))
                return [(equal != negate, "boolean")]

            return compare
        if op in ("and", "or"):
            is_and = op == "and"

            def logic(nodes: list[Node]) -> list[Node]:
                a, b = _truth(left(nodes)), _truth(right(nodes))
                if is_and:
                    result = False if a is False or b is False else (True if a and b else None)
                else:
                    result = True if a or b else (False if a is False and b is False else None)
                return [] if result is None else [(result, "boolean")]

            return logic
        raise UnsupportedExpression(f"operator {op}")

    def _type_op(self, source: Walker, wanted: str, test: bool) -> Walker:
        if test:
            return lambda nodes: [(any(_type_matches(t, wanted) for _, t in source(nodes)), "boolean")]
        return lambda nodes: [n for n in source(nodes) if _type_matches(n[1], wanted)]

    def _call(self, node: Call, at_root: bool) -> Walker:
        source: Walker = (lambda nodes: nodes) if node.target is None else self._compile(node.target, at_root)
        name, args = node.name, node.args
        if name in ("as", "ofType") and len(args) == 1:
            return self._type_op(source, args[0].name, False)
        if name == "is" and len(args) == 1:
            return self._type_op(source, args[0].name, True)
        if name == "where" and len(args) == 1:
            cond = self._compile(args[0], False)
            return lambda nodes: [n for n in source(nodes) if _truth(cond([n])) is True]
        if name == "exists" and len(args) <= 1:
            if args:
                cond = self._compile(args[0], False)
                return lambda nodes: [(any(_truth(cond([n])) is True for n in source(nodes)), "boolean")]
            return lambda nodes: [(bool(source(nodes)), "boolean")]
        if name == "empty" and not args:
            return lambda nodes: [(not source(nodes), "boolean")]
        if name == "not" and not args:

            def negate(nodes: list[Node]) -> list[Node]:
                value = _truth(source(nodes))
                return [] if value is None else [(not value, "boolean")]

            return negate
        if name == "first" and not args:
            return lambda nodes: source(nodes)[:1]
        if name == "resolve" and not args:
            return lambda nodes: [(v, t) for v, _ in source(nodes) if (t := _resolved_type(v))]
        if name == "extension" and len(args) == 1 and isinstance(args[0], Literal):
            url = args[0].value
            ext = self._member(source, "extension")
            return lambda nodes: [n for n in ext(nodes) if isinstance(n[0], dict) and n[0].get("url") == url]
        raise UnsupportedExpression(f"function {name}() with {len(args)} argument(s)")


def _resolved_type(value: Any) -> str | None:
    """``resolve()`` without a database: the target type the reference names."""
    if not isinstance(value, dict):
        return None
    return reference_target_type(value)


def _union(a: list[Node], b: list[Node]) -> list[Node]:
    if not a:
        return b
    if not b:
        return a
    return a + b


def _truth(nodes: list[Node]) -> bool | None:
    if not nodes:
        return None
    if len(nodes) == 1 and isinstance(nodes[0][0], bool):
        return nodes[0][0]
    return True  # a non-empty, non-boolean singleton is "true" in a boolean context


_SELF = "$self"


def _roots(node: Any, context_type: str) -> set[str] | None:
    """Top-level element names an expression reads (None: it may read the whole resource)."""
    if isinstance(node, Ident):
        is_self = node.name in ("$this", context_type, "Resource", "DomainResource")
        return {_SELF} if is_self else {node.name}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Member):
        inner = _roots(node.target, context_type)
        return {node.name} if inner == {_SELF} else inner
    if isinstance(node, Call):
        if node.target is None or node.name in ("exists", "empty", "not", "is"):
            return None  # these yield a value (false) even when nothing is there
        return _roots(node.target, context_type)
    if isinstance(node, Binary):
        left = _roots(node.left, context_type)
        if node.op == "as":
            return left
        if node.op != "|":
            return None
        right = _roots(node.right, context_type)
        return None if left is None or right is None else left | right
    return None


def root_keys(model: ElementModel, context_type: str, expression: str) -> frozenset[str] | None:
    """The JSON keys of a resource an expression can reach (None: unknown, never skip it)."""
    names = _roots(parse(expression), context_type)
    if names is None or _SELF in names:
        return None
    keys: set[str] = set()
    for name in names:
        children = model.children(context_type, name)
        if any(t == UNKNOWN for _, t in children):
            return None
        keys.update(key for key, _ in children)
    return frozenset(keys)


def compile_expression(model: ElementModel, context_type: str, expression: str) -> Walker:
    """Compile ``expression`` for resources (or backbone nodes) of ``context_type``."""
    return Compiler(model, context_type).compile(expression)


def evaluate(walker: Walker, value: Any, context_type: str) -> list[Node]:
    return walker([(value, context_type)])


__all__ = [
    "UNKNOWN",
    "Node",
    "UnsupportedExpression",
    "Walker",
    "compile_expression",
    "evaluate",
    "parse",
    "root_keys",
]
