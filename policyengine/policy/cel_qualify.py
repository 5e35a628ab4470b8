"""Which rules may run on the native CEL runtime (private to the CEL seam).

cel-python (the reference) and cel-expr-python (native, C++) agree on CEL's
core but differ at its edges. A rule *qualifies* for the native runtime only
when this module proves, from the parse tree, the closed JSON schemas of
card, event and history, and the policy's params, that none of these edges
can be reached with a value as result:

- ``==``, ``!=`` and ``in`` across kinds (``"a" == 1``, ``true == 1``): false
  natively, an error in the reference. Both sides must have one known kind
  (numbers count as one kind: the reference compares int and double by value,
  :mod:`.numbers`), or one side must be the ``null`` literal.
- ``string()`` of doubles, bools, null and lists prints differently: only
  ``string()`` of an int or a string qualifies.
- ``timestamp()`` / ``duration()`` read different non-RFC 3339 strings: only
  a schema ``date-time`` field (checked by :mod:`policyengine.formats`), a
  literal both runtimes read alike, or ``duration(string(<int>) + "<unit>")``.
- ``type()``, ``dyn()``, conversions of strings to numbers, and macros over
  maps (iteration order differs) never qualify.

Differences that make the native runtime *fail* (mixed int/double
arithmetic, negative indexes, missing fields) need no proof: the engine
re-runs every native error on the reference. Each rule also gets a cost
shape (:class:`CostShape`) so an evaluation whose reference cost could pass
the limit is sent to the reference before it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

__all__ = ["CostShape", "Kind", "kind_of_schema", "kind_of_value", "qualify"]

_PASS = {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
         "unary", "member", "primary"}
_CMP = {"relation_lt", "relation_le", "relation_gt", "relation_ge"}
_EQ = {"relation_eq", "relation_ne"}
_NUM = frozenset({"int", "double"})
_SAFE_METHODS = {"startsWith": "bool", "endsWith": "bool", "contains": "bool",
                 "matches": "bool"}
_DURATION_UNITS = {"h", "m", "s"}


@dataclass(frozen=True)
class Kind:
    """What an expression can evaluate to, as far as it is known."""

    kinds: frozenset[str] = frozenset()
    """CEL kinds; empty means unknown."""
    fields: dict[str, Kind] | None = field(default=None, compare=False)
    """Members of a map whose keys are known (closed schema or params)."""
    values: Kind | None = field(default=None, compare=False)
    """Kind of every value of a map, or every element of a list."""
    date_time: bool = False
    """A string the schema declares as RFC 3339 date-time."""


UNKNOWN = Kind()
NOTHING = Kind(frozenset({"nothing"}))
"""Element kind of an empty params list: it has no elements, so it adds nothing to a union."""


def _k(*kinds: str) -> Kind:
    return Kind(frozenset(kinds))


def _union(kinds: list[Kind]) -> Kind:
    if kinds and all(k is NOTHING for k in kinds):
        return NOTHING
    kinds = [k for k in kinds if k is not NOTHING]
    if not kinds or any(not k.kinds for k in kinds):
        return UNKNOWN
    if len(kinds) == 1:
        return kinds[0]
    if all(k.kinds == {"list"} for k in kinds):  # keep what every element is
        return Kind(frozenset({"list"}), values=_union([k.values or UNKNOWN for k in kinds]))
    if all(k.kinds == {"map"} for k in kinds):
        return Kind(frozenset({"map"}), values=_union([k.values or UNKNOWN for k in kinds]))
    if len({k.kinds for k in kinds}) == 1 and all(k.kinds <= {"string", "bool", "int", "double",
                                                                "null"} for k in kinds):
        return Kind(kinds[0].kinds, date_time=all(k.date_time for k in kinds))
    return Kind(frozenset().union(*(k.kinds for k in kinds)))


def kind_of_value(value: Any) -> Kind:
    """Kind of a params value (numbers are doubles, as :mod:`.numbers` makes them)."""
    if isinstance(value, bool):
        return _k("bool")
    if value is None:
        return _k("null")
    if isinstance(value, int | float):
        return _k("double")
    if isinstance(value, str):
        return _k("string")
    if isinstance(value, list):
        values = _union([kind_of_value(v) for v in value]) if value else NOTHING
        return Kind(frozenset({"list"}), values=values)
    if isinstance(value, dict):
        fields = {str(k): kind_of_value(v) for k, v in value.items()}
        return Kind(frozenset({"map"}), fields=fields, values=_union(list(fields.values())))
    return UNKNOWN


def kind_of_schema(schema: Any, root: dict[str, Any]) -> Kind:
    """Kind of a JSON Schema node (an undeclared property is unknown)."""
    if not isinstance(schema, dict):
        return UNKNOWN
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return kind_of_schema(node, root)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or any(k in schema for k in ("anyOf", "oneOf", "allOf")):
        return UNKNOWN
    names = {"string": "string", "number": "double", "integer": "double", "boolean": "bool",
             "null": "null", "array": "list", "object": "map"}
    kinds = frozenset(names[t] for t in types if t in names)
    fields, values = None, None
    if "map" in kinds:  # declared properties keep their schema, closed object or not
        fields = {k: kind_of_schema(v, root) for k, v in schema.get("properties", {}).items()}
    if "list" in kinds:
        values = kind_of_schema(schema.get("items"), root)
    return Kind(kinds, fields=fields, values=values,
                date_time=schema.get("format") == "date-time")


@dataclass
class CostShape:
    """Reference cost bound of one rule: sum over nodes of product of range sizes.

    Each term is ``(literal factor, number of factors of L, charges W)``:
    L is the longest list in the inputs, W the largest value one step can
    charge (elements plus characters). See :mod:`.limits` for what is charged.
    """

    terms: list[tuple[int, int, bool]] = field(default_factory=list)
    _grouped: tuple[int, tuple[tuple[int, int, bool], ...]] | None = field(
        default=None, repr=False, compare=False)

    def bound(self, longest: int, weight: int) -> int:
        """Upper bound of the reference's cost for these input sizes."""
        if self._grouped is None or self._grouped[0] != len(self.terms):
            groups: dict[tuple[int, bool], int] = {}
            for lit, n, charged in self.terms:
                groups[n, charged] = groups.get((n, charged), 0) + lit
            self._grouped = (len(self.terms), tuple((lit, n, c) for (n, c), lit in groups.items()))
        return sum(lit * (longest + 1) ** n * (2 + (weight if charged else 0))
                   for lit, n, charged in self._grouped[1])


class _NotQualified(Exception):
    pass


def _simplify(node: Tree[Token] | Token) -> Any:
    if isinstance(node, Token):
        return node
    children = [_simplify(c) for c in node.children]
    if node.data in _PASS and len(children) == 1:
        return children[0]
    return (node.data, children)


class _Qualifier:
    def __init__(self, roots: dict[str, Kind]) -> None:
        self.roots = roots
        self.shape = CostShape()

    def charge(self, factor: tuple[int, int], charged: bool = False) -> None:
        self.shape.terms.append((factor[0], factor[1], charged))

    def kind(self, node: Any, scope: dict[str, Kind], factor: tuple[int, int]) -> Kind:
        self.charge(factor)
        if isinstance(node, Token):
            return self.literal(node) if node.type != "IDENT" else self.ident(str(node), scope)
        tag, kids = node
        method = getattr(self, f"n_{tag}", None)
        if method is None:
            raise _NotQualified(tag)
        result: Kind = method(kids, scope, factor)
        return result

    def literal(self, token: Token) -> Kind:
        kinds = {"INT_LIT": "int", "FLOAT_LIT": "double", "STRING_LIT": "string",
                 "BOOL_LIT": "bool", "NULL_LIT": "null", "MLSTRING_LIT": "string"}
        if token.type not in kinds:
            raise _NotQualified(token.type)
        return _k(kinds[token.type])

    def ident(self, name: str, scope: dict[str, Kind]) -> Kind:
        if name in scope:
            return scope[name]
        if name in self.roots:
            return self.roots[name]
        raise _NotQualified(name)

    def n_literal(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        return self.literal(kids[0])

    def n_ident(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        return self.ident(str(kids[0]), scope)

    def n_paren_expr(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        return self.kind(kids[0], scope, f)

    def n_expr(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        self.require(self.kind(kids[0], scope, f), "bool")
        return _union([self.kind(kids[1], scope, f), self.kind(kids[2], scope, f)])

    def n_conditionalor(self, kids: list[Any], scope: dict[str, Kind],
                        f: tuple[int, int]) -> Kind:
        for kid in kids:
            self.require(self.kind(kid, scope, f), "bool")
        return _k("bool")

    n_conditionaland = n_conditionalor

    def n_unary(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        op, operand = kids[0], self.kind(kids[1], scope, f)
        if isinstance(op, tuple) and op[0] == "unary_not":
            return self.require(operand, "bool")
        negate = isinstance(op, tuple) and op[0] == "unary_neg"
        if negate and operand.kinds and operand.kinds <= _NUM:
            return operand
        raise _NotQualified("unary")

    def require(self, kind: Kind, *allowed: str) -> Kind:
        if not kind.kinds or not kind.kinds <= set(allowed):
            raise _NotQualified(f"expected {allowed}")
        return kind

    def n_relation(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        (op, (left_node,)), right_node = kids[0], kids[1]
        left, right = self.kind(left_node, scope, f), self.kind(right_node, scope, f)
        if op in _CMP:
            return _k("bool")  # a mismatch is an error in both runtimes
        if op in _EQ:
            self.comparable(left, right, left_node, right_node)
            # The reference charges == only for list and map operands (their deep size).
            self.charge(f, charged=any(not k.kinds or k.kinds & {"list", "map"}
                                       for k in (left, right)))
            return _k("bool")
        if op == "relation_in":
            element = right.values if right.kinds == {"list"} else None
            if element is None:
                raise _NotQualified("in over a map or unknown")
            self.comparable(left, element, left_node, None)
            self.charge(f, charged=True)
            return _k("bool")
        raise _NotQualified(op)

    @staticmethod
    def comparable(left: Kind, right: Kind, left_node: Any, right_node: Any) -> None:
        nulls = [(t := _token_of(n)) is not None and t.type == "NULL_LIT"
                 for n in (left_node, right_node)]
        if any(nulls):
            return  # x == null: false natively and in the reference for any JSON value
        for a, b in ((left, right),):
            if a.kinds and b.kinds and len(a.kinds) == 1 and a.kinds == b.kinds \
                    and a.kinds <= {"string", "bool", "int", "double", "null"}:
                return
            if a.kinds and b.kinds and a.kinds <= _NUM and b.kinds <= _NUM:
                return
        raise _NotQualified("comparison across kinds")

    def n_addition(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        (op, (left_node,)), right_node = kids[0], kids[1]
        left, right = self.kind(left_node, scope, f), self.kind(right_node, scope, f)
        kinds = (left.kinds, right.kinds)
        if kinds in ((frozenset({"int"}),) * 2, (frozenset({"double"}),) * 2):
            return left
        if op == "addition_sub" and kinds == (frozenset({"timestamp"}),) * 2:
            return _k("duration")
        if kinds[1] == {"duration"} and kinds[0] <= {"timestamp", "duration"} and kinds[0]:
            return left
        if op == "addition_add" and kinds == (frozenset({"string"}),) * 2 and f == (1, 0):
            self.charge(f, charged=True)
            return left  # concatenation outside comprehensions only (bounded by W)
        raise _NotQualified("arithmetic")

    def n_multiplication(self, kids: list[Any], scope: dict[str, Kind],
                         f: tuple[int, int]) -> Kind:
        (op, (left_node,)), right_node = kids[0], kids[1]
        left, right = self.kind(left_node, scope, f), self.kind(right_node, scope, f)
        if op == "multiplication_mul" and left.kinds == right.kinds and left.kinds in (
                {"int"}, {"double"}):
            return left
        raise _NotQualified("division or modulo")  # rounding and zero differ

    def n_member_dot(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        target = self.kind(kids[0], scope, f)
        if target.fields is not None and str(kids[1]) in target.fields:
            return target.fields[str(kids[1])]
        if target.kinds == {"map"}:
            return target.values or UNKNOWN
        return UNKNOWN  # a missing field is an error natively too: re-run on the reference

    def n_member_index(self, kids: list[Any], scope: dict[str, Kind],
                       f: tuple[int, int]) -> Kind:
        target, index = self.kind(kids[0], scope, f), kids[1]
        key = self.kind(index, scope, f)
        token = _token_of(index)
        if (target.kinds == {"list"} and token is not None and token.type == "INT_LIT"
                and not str(token).startswith("-")):
            return target.values or UNKNOWN
        if target.kinds == {"map"} and key.kinds == {"string"}:
            return target.values or UNKNOWN
        raise _NotQualified("index")

    def n_list_lit(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        items = self.args(kids, scope, f)
        return Kind(frozenset({"list"}), values=_union(items) if items else UNKNOWN)

    def args(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> list[Kind]:
        if not kids:
            return []
        _, items = kids[0] if isinstance(kids[0], tuple) and kids[0][0] == "exprlist" \
            else ("exprlist", kids)
        return [self.kind(item, scope, f) for item in items]

    def n_ident_arg(self, kids: list[Any], scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        name = str(kids[0])
        raw = kids[1][1] if len(kids) > 1 and isinstance(kids[1], tuple) else []
        if name == "has":
            return _k("bool")
        if name == "duration" and len(raw) == 1 and _duration_arg(raw[0]):
            self.require(self.kind(raw[0][1][0][1][0], scope, f), "string")
            return _k("duration")
        args = [self.kind(a, scope, f) for a in raw]
        if name == "size" and len(args) == 1 and args[0].kinds and args[0].kinds <= {
                "string", "list", "map"}:
            return _k("int")
        if name in ("int", "double") and len(args) == 1 and args[0].kinds and args[0].kinds <= _NUM:
            return _k(name)
        if name == "string" and len(args) == 1 and args[0].kinds in ({"int"}, {"string"}):
            return _k("string")
        if name == "timestamp" and len(args) == 1 and (
                args[0].date_time or _rfc3339_literal(raw[0])):
            return _k("timestamp")
        raise _NotQualified(f"function {name}")

    def n_member_dot_arg(self, kids: list[Any], scope: dict[str, Kind],
                         f: tuple[int, int]) -> Kind:
        target_node, method = kids[0], str(kids[1])
        raw = kids[2][1] if len(kids) > 2 and isinstance(kids[2], tuple) else []
        target = self.kind(target_node, scope, f)
        if method in ("all", "exists", "exists_one", "map", "filter"):
            return self.macro(method, target, target_node, raw, scope, f)
        args = [self.kind(a, scope, f) for a in raw]
        if method in _SAFE_METHODS and target.kinds == {"string"} and all(
                a.kinds == {"string"} for a in args):
            return _k(_SAFE_METHODS[method])  # the reference charges string methods nothing
        raise _NotQualified(f"method {method}")

    def macro(self, method: str, target: Kind, target_node: Any, raw: list[Any],
              scope: dict[str, Kind], f: tuple[int, int]) -> Kind:
        var = raw[0][1][0] if len(raw) == 2 and isinstance(raw[0], tuple) and raw[0][0] == "ident" \
            else None
        if target.kinds != {"list"} or var is None:
            raise _NotQualified("macro over a map or unknown")
        if str(var).startswith("_pe_"):
            raise _NotQualified("reserved variable name")  # cel_native renames params to _pe_*
        size = _literal_size(target_node)
        inner = (f[0] * size, f[1]) if size is not None else (f[0], f[1] + 1)
        # The reference charges 1 + len(items) once for the collection (bounded
        # by 2 per element of the inner factor, at least one), then 1 per step
        # plus the length of a list, map or string the step yields (:mod:`.limits`).
        self.charge((max(inner[0], f[0]), inner[1]))
        body = self.kind(raw[1], {**scope, str(var): target.values or UNKNOWN}, inner)
        self.charge(inner, charged=not body.kinds or bool(body.kinds & {"list", "map", "string"}))
        if method == "map":
            return Kind(frozenset({"list"}), values=body)
        if method == "filter":
            self.require(body, "bool")
            return target
        self.require(body, "bool")
        return _k("bool")


def _token_of(node: Any) -> Token | None:
    """The literal token of ``("literal", [token])``, else None."""
    if isinstance(node, tuple) and node[0] == "literal" and isinstance(node[1][0], Token):
        return node[1][0]
    return node if isinstance(node, Token) else None


def _literal_size(node: Any) -> int | None:
    if isinstance(node, tuple) and node[0] == "list_lit":
        items = node[1][0][1] if node[1] and isinstance(node[1][0], tuple) else node[1]
        return len(items)
    return None


def _string_literal(node: Any) -> str | None:
    token = _token_of(node)
    if token is not None and token.type == "STRING_LIT":
        text = str(token)
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and "\\" not in text:
            return text[1:-1]
    return None


def _rfc3339_literal(node: Any) -> bool:
    from policyengine.formats import is_date_time

    text = _string_literal(node)
    return text is not None and is_date_time(text)


def _duration_arg(node: Any) -> bool:
    """``duration(string(<int>) + "h")``: both runtimes read ``<digits><unit>`` alike."""
    if not (isinstance(node, tuple) and node[0] == "addition"):
        return False
    (op, (left,)), right = node[1][0], node[1][1]
    unit = _string_literal(right)
    return (op == "addition_add" and unit in _DURATION_UNITS and isinstance(left, tuple)
            and left[0] == "ident_arg" and str(left[1][0]) == "string")


def qualify(tree: Tree[Token], roots: dict[str, Kind]) -> CostShape | None:
    """The rule's cost shape when it may run natively, else None."""
    qualifier = _Qualifier(roots)
    try:
        result = qualifier.kind(_simplify(tree), {}, (1, 0))
    except (_NotQualified, RecursionError, ValueError, IndexError, TypeError):
        return None
    if result.kinds != {"bool"}:
        return None  # a non-bool result is an error outcome: the reference words it
    return qualifier.shape
