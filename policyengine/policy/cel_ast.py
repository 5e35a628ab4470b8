"""Static analysis of cel-python parse trees (private to the CEL seam).

Walks the lark tree that cel-python's grammar (``celpy/cel.lark``) produces
and reports, as plain data, what lint and explanation need:

- the free variables an expression names (to reject anything but ``card``,
  ``event``, ``history``, ``params``, ``now``);
- the functions and methods it calls;
- the member-access paths it reads (``card.fairness[*].value``), with
  comprehension variables resolved to the collection they range over, so a
  decision can show the values each rule read and name a missing field;
- its nesting depth and comprehension depth (for :mod:`.limits`).

Only :mod:`policyengine.policy.cel` imports this module; a different CEL
runtime would bring its own analysis behind the same :class:`ExprInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

__all__ = ["MACROS", "ExprInfo", "Reference", "analyse", "literal_kind", "measure",
           "operator_height"]

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
"""Comprehension macros: ``target.macro(var, body)``."""

Segment = "str | int | None | tuple[Segment, ...]"
"""A path step: field name, list index, None for "every element", or a
path whose value is the key (``params.limits[card.risk_tier]``)."""
Path = tuple[Any, ...]


@dataclass(frozen=True)
class Reference:
    """A name used in an expression and where (1-based, within the expression)."""

    name: str
    line: int
    column: int


@dataclass
class ExprInfo:
    """What one expression reads and calls."""

    variables: list[Reference] = field(default_factory=list)
    """Free (unbound) identifiers."""
    functions: list[Reference] = field(default_factory=list)
    """Global functions and methods called, including macros and ``has``."""
    params: list[Reference] = field(default_factory=list)
    """``params.<name>`` / ``params["name"]`` references."""
    paths: list[Path] = field(default_factory=list)
    """Member paths read, in source order, outside ``has()``."""
    optional_paths: list[Path] = field(default_factory=list)
    """Member paths tested with ``has()``."""
    problems: list[Reference] = field(default_factory=list)
    """Malformed constructs (``name`` holds the message)."""


def measure(tree: Tree[Token]) -> tuple[int, int]:
    """(nesting depth, comprehension depth), computed without recursion."""
    deepest, deepest_macro = 0, 0
    stack: list[tuple[Tree[Token] | Token, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, macros = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data == "expr":
            depth += 1
        elif node.data == "member_dot_arg" and _token(node, 1) in MACROS:
            macros += 1
        deepest, deepest_macro = max(deepest, depth), max(deepest_macro, macros)
        stack.extend((child, depth, macros) for child in node.children)
    return deepest, deepest_macro


_PASS_THROUGH = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition",
                           "multiplication", "unary", "member", "primary", "paren_expr"})


def operator_height(tree: Tree[Token]) -> int:
    """Longest path of operator nodes (grammar pass-through levels not counted).

    A chain ``a + a + ... + a`` or ``x.f.f.f`` nests one node per step: this
    is about how deeply the generated Python nests, which CPython caps.
    """
    deepest = 0
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 0)]
    while stack:
        node, height = stack.pop()
        if not isinstance(node, Tree):
            continue
        if not (node.data in _PASS_THROUGH and len(node.children) == 1):
            height += 1
        deepest = max(deepest, height)
        stack.extend((child, height) for child in node.children)
    return deepest


def analyse(tree: Tree[Token], roots: frozenset[str]) -> ExprInfo:
    """Collect variables, functions, params and paths of a parsed expression.

    Args:
        tree: a cel-python parse tree whose depth :func:`measure` has bounded.
        roots: the variable names the language defines.
    """
    info = ExprInfo()
    _Walker(info, roots).walk(tree, {}, optional=False)
    return info


def _token(node: Tree[Token], index: int) -> str | None:
    if len(node.children) > index and isinstance(node.children[index], Token):
        return str(node.children[index])
    return None


def _pos(node: Tree[Token] | Token) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    return getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1


def _unwrap(node: Tree[Token] | Token) -> Tree[Token] | Token:
    """Descend single-child chains (expr > conditionalor > ... > member)."""
    while (
        isinstance(node, Tree)
        and node.data in _PASS_THROUGH
        and len(node.children) == 1
    ):
        node = node.children[0]
    return node


def _literal_index(node: Tree[Token] | Token) -> Any:
    node = _unwrap(node)
    if isinstance(node, Tree) and node.data == "literal" and node.children:
        tok = node.children[0]
        if isinstance(tok, Token) and tok.type == "INT_LIT":
            return int(str(tok), 0)
        if isinstance(tok, Token) and tok.type == "STRING_LIT" and str(tok)[0] not in "rR":
            return str(tok)[1:-1]
    return None


class _Walker:
    """One pass over the tree with a scope of comprehension variables."""

    def __init__(self, info: ExprInfo, roots: frozenset[str]) -> None:
        self.info = info
        self.roots = roots

    def path_of(self, node: Tree[Token] | Token, scope: dict[str, Path | None]) -> Path | None:
        """The member path an expression denotes, or None when it is computed."""
        node = _unwrap(node)
        if not isinstance(node, Tree):
            return None
        if node.data == "ident":
            name = str(node.children[0])
            if name in scope:
                return scope[name]
            return (name,) if name in self.roots else None
        if node.data == "member_dot":
            base = self.path_of(node.children[0], scope)
            return None if base is None else (*base, str(node.children[1]))
        if node.data == "member_index":
            base = self.path_of(node.children[0], scope)
            return None if base is None else (*base, self.index(node.children[1], scope))
        if node.data == "member_dot_arg" and _token(node, 1) == "filter":
            return self.path_of(node.children[0], scope)
        return None

    def index(self, node: Tree[Token] | Token, scope: dict[str, Path | None]) -> Any:
        """The step an index expression denotes: a literal, a key path, or None."""
        literal = _literal_index(node)
        if literal is not None:
            return literal
        key = self.path_of(node, scope)
        return key if key is not None and None not in key else None

    def record(self, node: Tree[Token], scope: dict[str, Path | None], optional: bool) -> None:
        """Note the path a member access reads (and a params reference)."""
        path = self.path_of(node, scope)
        if path is None or len(path) < 2:
            return
        (self.info.optional_paths if optional else self.info.paths).append(path)
        if path[0] == "params" and isinstance(path[1], str):
            line, col = _pos(node)
            self.info.params.append(Reference(path[1], line, col))

    def walk(self, node: Tree[Token] | Token, scope: dict[str, Path | None],
             optional: bool) -> None:
        """Visit a node with the comprehension variables in scope."""
        if not isinstance(node, Tree):
            return
        kind = node.data
        if kind in {"member_dot", "member_index"}:
            self.record(node, scope, optional)
        if kind == "ident":
            name = str(node.children[0])
            if name not in scope:
                line, col = _pos(node.children[0])
                self.info.variables.append(Reference(name, line, col))
            return
        if kind == "ident_arg":
            self.call(node, scope, optional)
            return
        if kind == "member_dot_arg":
            self.method(node, scope, optional)
            return
        for child in node.children:
            self.walk(child, scope, optional)

    def call(self, node: Tree[Token], scope: dict[str, Path | None], optional: bool) -> None:
        """A global call such as ``size(x)`` or ``has(card.a)``."""
        name = str(node.children[0])
        line, col = _pos(node.children[0])
        self.info.functions.append(Reference(name, line, col))
        args = node.children[1:]
        for arg in args:
            self.walk(arg, scope, optional or name == "has")

    def method(self, node: Tree[Token], scope: dict[str, Path | None], optional: bool) -> None:
        """A method call; macros bind their variable to the target's elements."""
        target, name_tok = node.children[0], node.children[1]
        name = str(name_tok)
        line, col = _pos(name_tok)
        self.info.functions.append(Reference(name, line, col))
        self.walk(target, scope, optional)
        arglist = node.children[2] if len(node.children) > 2 else None
        args = arglist.children if isinstance(arglist, Tree) else []
        if name not in MACROS:
            for arg in args:
                self.walk(arg, scope, optional)
            return
        var = _unwrap(args[0]) if args else None
        if len(args) < 2 or not (isinstance(var, Tree) and var.data == "ident"):
            self.info.problems.append(
                Reference(f"{name}() expects (variable, expression)", line, col)
            )
            return
        base = self.path_of(target, scope)
        inner = dict(scope)
        inner[str(var.children[0])] = None if base is None else (*base, None)
        for body in args[1:]:
            self.walk(body, inner, optional)


_LITERALS = {"INT_LIT": "number", "UINT_LIT": "number", "FLOAT_LIT": "number",
             "STRING_LIT": "string", "MLSTRING_LIT": "string", "BYTES_LIT": "bytes",
             "BOOL_LIT": "bool", "NULL_LIT": "null"}


def literal_kind(tree: Tree[Token]) -> str | None:
    """The kind of literal when the whole expression is one literal, else None."""
    node: Tree[Token] | Token = tree
    while isinstance(node, Tree) and len(node.children) == 1:
        child = node.children[0]
        if node.data == "literal":
            return _LITERALS.get(getattr(child, "type", ""))
        node = child
    return None
