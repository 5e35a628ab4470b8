"""The one seam around cel-python: parse, analyse, compile, evaluate.

Everything else in policyengine talks to CEL through this module, so a
native runtime (cel-expr-python, common-expression-language) can replace
cel-python later without touching lint, compile or evaluate.

Choices, measured on cel-python 0.5.0:

- One lark parser per process, built lazily (about 120-180 ms, or about
  6 ms from lark's grammar cache in the user's cache directory) with
  cel-python's grammar and ``TranspilerTree`` nodes. It is our own instance,
  not cel-python's shared ``CELParser.CEL_PARSER``, whose tree class is fixed
  by whichever ``Environment`` a process happens to create first. No
  ``celpy.Environment`` is ever created.
- :func:`prepare` parses, measures and analyses an expression once; the
  result and its transpiled Python are cached per user (:mod:`.cel_cache`),
  so later processes skip parsing and transpiling (load of the built-in
  packs: about 200 ms -> 25 ms).
- Expressions run in cel-python's transpiled mode (CEL -> Python code
  object, compiled once), about 4x faster than its interpreter. Outcomes
  agree with the interpreter (a test runs the conformance corpus both ways);
  only internal error texts differ, and the engine rewrites those anyway.
- cel-python's ``Transpiler.evaluate`` writes ``base_activation`` into the
  ``celpy.evaluation`` module globals, so two threads would race. We exec
  the code object with a fresh globals dict per evaluation instead.
- In that dict, ``celpy.evaluation``, ``celpy.celtypes`` and ``operator``
  are proxies (:mod:`.cel_runtime`) that compare and combine numbers across
  int/double and meter comprehensions and growing values against the
  evaluation's :class:`~.limits.Budget`.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import celpy
import celpy.celparser
import celpy.evaluation as _ev
import lark
from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from policyengine.policy import cel_ast, cel_cache
from policyengine.policy.cel_ast import ExprInfo, Reference
from policyengine.policy.cel_runtime import GLOBALS
from policyengine.policy.limits import (
    Budget,
    LimitExceeded,
    reset_budget,
    set_budget,
)

__all__ = [
    "FUNCTIONS",
    "CelEvalFailure",
    "CelSyntaxError",
    "CelTooComplexError",
    "ExprInfo",
    "LimitExceeded",
    "Prepared",
    "Program",
    "Reference",
    "activation",
    "analyse",
    "compile_program",
    "measure",
    "parse",
    "prepare",
]

FUNCTIONS = frozenset(k for k in _ev.base_functions if k[0].isalpha()) | cel_ast.MACROS | {
    "has",
    "dyn",
}
"""Functions and methods a rule may call."""


class CelSyntaxError(Exception):
    """An expression that does not parse; line/column are within the expression."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class CelTooComplexError(CelSyntaxError):
    """An expression that parses but nests too deeply to analyse or compile.

    Long operator chains (``a + a + ... + a``, ``!!!...x``, ``x.a.a.a...``)
    pass the depth limit, which counts parentheses, calls and literals, but
    nest one level of generated Python per operator; CPython refuses more
    than 200 nested parentheses and recursion has a limit too.
    """


class CelEvalFailure(Exception):
    """An expression that could not be evaluated (missing field, type error)."""


_PARSER: Lark | None = None
_PARSER_LOCK = threading.Lock()


def _parser_cache(grammar: str) -> str | bool:
    """Where lark may cache its grammar analysis (120-180 ms -> about 6 ms), or False.

    Lark's cache is a pickle, so it lives only in a directory this user owns
    and nobody else can write (``$XDG_CACHE_HOME/policyengine``, mode 0700),
    never in a shared temp dir. ``POLICYENGINE_PARSER_CACHE=off`` disables it.
    """
    folder = cel_cache.cache_dir()
    if folder is None:
        return False
    # lark also checks a digest of grammar and options stored in the file.
    key = hashlib.sha256(f"{grammar}|{lark.__version__}|{sys.version_info[:2]}".encode())
    return str(folder / f"cel-parser-{key.hexdigest()[:16]}.lark")


def _parser() -> Lark:
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            grammar = (Path(celpy.__file__).parent / "cel.lark").read_text()
            _PARSER = Lark(
                grammar,
                parser="lalr",
                start="expr",
                g_regex_flags=re.M,
                lexer_callbacks={"IDENT": celpy.celparser.CELParser.ambiguous_literals},
                propagate_positions=True,
                maybe_placeholders=False,
                priority="invert",
                tree_class=_ev.TranspilerTree,
                cache=_parser_cache(grammar),
            )
        return _PARSER


def parse(text: str) -> Tree[Token]:
    """Parse one CEL expression.

    Raises:
        CelSyntaxError: with the 1-based line and column inside ``text``.
    """
    try:
        return _parser().parse(text)
    except UnexpectedEOF:
        lines = text.split("\n")
        raise CelSyntaxError("syntax error: unexpected end of expression",
                             len(lines), len(lines[-1]) + 1) from None
    except UnexpectedToken as exc:
        expected = ", ".join(sorted(exc.expected)[:6])
        found = "end of expression" if exc.token.type == "$END" else repr(str(exc.token))
        raise CelSyntaxError(f"syntax error: unexpected {found}, expected one of {expected}",
                             exc.line, exc.column) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else "?"
        raise CelSyntaxError(f"syntax error: unexpected character {char!r}",
                             exc.line, exc.column) from None
    except LarkError as exc:
        raise CelSyntaxError(f"syntax error: {str(exc).splitlines()[0]}", 1, 1) from None


def measure(tree: Tree[Token]) -> tuple[int, int]:
    """(nesting depth, comprehension depth) of a parsed expression."""
    return cel_ast.measure(tree)


def analyse(tree: Tree[Token], roots: frozenset[str]) -> ExprInfo:
    """Variables, functions, params and member paths of a parsed expression."""
    return cel_ast.analyse(tree, roots)


# --- evaluation -----------------------------------------------------------------

_BASE = _ev.Activation(annotations={}, functions={})


class _Activation:
    """Variable lookup for transpiled code: a plain dict, no annotations.

    cel-python's own Activation resolves every name through typed name
    containers (half the evaluation time in profiles). Transpiled code only
    needs ``activation.<name>``, ``resolve_variable`` and, in macros,
    ``nested_activation``; a missing name raises KeyError, which cel-python's
    ``result()`` turns into a CEL error, as its Activation does.
    """

    __slots__ = ("_vars",)

    def __init__(self, variables: dict[str, Any]) -> None:
        self._vars = variables

    def __getattr__(self, name: str) -> Any:
        try:
            return self._vars[name]
        except KeyError:
            raise KeyError(name) from None

    def resolve_variable(self, name: str) -> Any:
        """``.name`` references in transpiled code."""
        return self.__getattr__(name)

    def nested_activation(self, vars: dict[str, Any]) -> _Activation:
        """A child scope with a comprehension variable bound (cel-python's name)."""
        return _Activation({**self._vars, **vars})


def activation(variables: Mapping[str, Any]) -> Any:
    """An activation holding ``variables`` (CEL values), shared by many programs."""
    return _Activation(dict(variables))


@dataclass(frozen=True)
class Program:
    """One compiled expression, ready to evaluate many times (thread-safe)."""

    source: str
    python: str = field(repr=False)
    """The Python source cel-python's transpiler made of it."""

    @cached_property
    def code(self) -> types.CodeType:
        """The compiled ``python``, on first use.

        A program read from the per-user cache is compiled only when it is
        evaluated (start-up time: a gate run evaluates about a third of the
        built-in packs' expressions); its source compiled when it was stored,
        with the same Python (part of the cache key).
        """
        return compile(self.python, "<cel>", "exec")

    def evaluate(self, act: Any, budget: Budget) -> Any:
        """Evaluate against an :func:`activation` within ``budget``.

        Raises:
            CelEvalFailure: the expression could not be evaluated.
            LimitExceeded: the budget ran out.
        """
        namespace = dict(GLOBALS)
        namespace["base_activation"] = act
        token = set_budget(budget)
        try:
            exec(self.code, namespace)
        except LimitExceeded:
            raise
        except RecursionError:
            raise LimitExceeded("evaluation exceeded limit: recursion depth") from None
        except Exception as exc:  # any Python error inside generated code is a rule error
            raise CelEvalFailure(_describe(exc)) from None
        finally:
            reset_budget(token)
        value = namespace["CEL"]
        if isinstance(value, _ev.CELEvalError):
            raise CelEvalFailure(_describe(value))
        return value


def compile_program(tree: Tree[Token], source: str) -> Program:
    """Transpile a parsed (and measured) expression to a code object, once."""
    return _compiled(source, *_transpile(tree))


def _compiled(source: str, python: str, code: types.CodeType) -> Program:
    """A Program whose code the transpiler has already compiled."""
    program = Program(source=source, python=python)
    program.__dict__["code"] = code  # what cached_property would store on first use
    return program


def _transpile(tree: Tree[Token]) -> tuple[str, types.CodeType]:
    transpiler = _ev.Transpiler(ast=cast(_ev.TranspilerTree, tree), activation=_BASE)
    transpiler.transpile()
    return transpiler.source_text, transpiler.executable_code


@dataclass
class Prepared:
    """One expression parsed (or read from the per-user cache), measured and analysed."""

    text: str
    depth: int
    """Nesting depth (see :func:`measure`)."""
    macros: int
    """Comprehension depth."""
    literal: str | None
    """Kind of literal when the whole expression is one literal (bool, string, ...)."""
    info: ExprInfo | None
    """Static analysis; None when the expression exceeded the depth limits."""
    tree: Tree[Token] | None = None
    python: str | None = None
    roots: frozenset[str] = frozenset()

    def program(self) -> Program:
        """Compile to a Program (transpiling at most once per process; cached on disk).

        Raises:
            CelTooComplexError: the generated code nests too deeply to compile.
        """
        if self.python is not None:  # from the cache: compiled on first evaluation
            return Program(source=self.text, python=self.python)
        try:
            assert self.tree is not None and self.info is not None
            python, code = _transpile(self.tree)
            self.python = python
            cel_cache.store(self.text, self.roots, self.depth, self.macros, self.literal,
                            self.info, python)
        except (RecursionError, SyntaxError, MemoryError) as exc:
            raise _too_complex(f"cannot compile: {type(exc).__name__}") from None
        return _compiled(self.text, python, code)


def prepare(text: str, roots: frozenset[str], *, max_depth: int,
            max_comprehensions: int, max_operators: int = 150) -> Prepared:
    """Parse, measure and analyse ``text``, or read all of that from the cache.

    Expressions deeper than the limits are measured but not analysed (the
    analysis is recursive), and never cached.

    Raises:
        CelSyntaxError: the expression does not parse.
        CelTooComplexError: operators chain deeper than ``max_operators``.
    """
    entry = cel_cache.load(text, roots)
    if entry is not None:
        return Prepared(text=text, roots=roots, **entry)
    tree = parse(text)
    depth, macros = measure(tree)
    if depth > max_depth or macros > max_comprehensions:
        return Prepared(text, depth, macros, None, None, tree=tree, roots=roots)
    height = cel_ast.operator_height(tree)
    if height > max_operators:
        raise _too_complex(f"{height} operators nested, limit {max_operators}")
    try:
        info = analyse(tree, roots)
    except RecursionError:
        raise _too_complex("analysis ran out of stack") from None
    return Prepared(text, depth, macros, cel_ast.literal_kind(tree), info,
                    tree=tree, roots=roots)


def _too_complex(detail: str) -> CelTooComplexError:
    return CelTooComplexError(
        f"too complex: operators or member steps chained too deeply ({detail}); "
        "split it into smaller expressions", 1, 1)


def _describe(exc: BaseException) -> str:
    """A short, lowercase description of a CEL evaluation failure."""
    # The transpiled runner wraps the real error: ("evaluation error", type, (message, ...)).
    while (isinstance(exc, _ev.CELEvalError) and len(exc.args) > 2
           and exc.args[0] == "evaluation error" and isinstance(exc.args[2], tuple)
           and exc.args[2] and isinstance(exc.args[2][0], str)):
        exc = _ev.CELEvalError(*exc.args[2])
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    if text == "match error" and len(exc.args) > 2 and exc.args[2]:  # RE2 rejected the pattern
        reason = exc.args[2][0]
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        text = f"matches: bad RE2 pattern: {reason}"
    if text.startswith("undeclared reference"):
        text = text.split(" (in ", 1)[0]
    text = re.sub(r"<class '[\w.]+\.(\w+)'>", r"\1", text)
    return text[:200]
