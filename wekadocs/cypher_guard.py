"""The Cypher validator: every statement the query service runs passes through here.

Three layers, and any one of them stops a write:

1. ``check_statement`` tokenises the text and refuses anything outside a small
   read-only, parameters-only, bounded subset of Cypher. It is strict on
   purpose: a false alarm costs a template author a rename, a miss costs data.
2. ``check_plan`` reads the planner's ``EXPLAIN`` output, which no spelling
   trick survives: write operators, full scans, oversized scans and expansions.
3. ``GraphStore.read`` runs in READ access mode, so the server refuses writes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, LiteralString

from wekadocs.errors import CypherRejected
from wekadocs.graph_store import GraphStore

__all__ = ["GuardLimits", "DEFAULT_LIMITS", "check_statement", "check_plan", "CypherGuard"]


@dataclass(frozen=True)
class GuardLimits:
    """How far a statement may reach; passed in, never read from the environment."""

    max_depth: int = 3  # upper bound of any variable-length pattern
    max_limit: int = 200  # the final LIMIT
    max_estimated_rows: float = 100_000  # planner estimate for one scan or expansion
    allowed_procedures: frozenset[str] = field(
        default_factory=lambda: frozenset({"db.index.fulltext.queryNodes"})
    )


DEFAULT_LIMITS = GuardLimits()

# ---------------------------------------------------------------- tokens

# Whitespace is ASCII only: Cypher also skips Unicode spaces, which would let
# text hide between tokens. Anything no pattern matches is refused by name.
_TOKEN = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<param>\$[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
    r"|(?P<punct>->|<-|\.\.|<>|<=|>=|=~|\+=|::|\|\||[()\[\]{},.:|*+\-/%^=<>&!])"
)
# Quotes of every kind are refused, backticks included: templates never need a
# quoted name, and allowing `apoc`.`x` would make us un-quote before judging.
_REFUSED_CHARS = {
    "'": "string literals are not allowed; pass values as $parameters",
    '"': "string literals are not allowed; pass values as $parameters",
    "`": "backtick-quoted names are not allowed",
    ";": "only one statement is allowed (found ';')",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # param, name, number, punct; "end" past the last token
    text: str
    pos: int

    @property
    def word(self) -> str:
        """The upper-cased keyword, or "" for anything that is not a name."""
        return self.text.upper() if self.kind == "name" else ""


def _tokenize(cypher: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(cypher):
        if cypher.startswith(("//", "/*"), pos):
            raise CypherRejected(f"comments are not allowed (offset {pos})")
        match = _TOKEN.match(cypher, pos)
        if match is None:
            raise CypherRejected(_refusal(cypher[pos], pos))
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _refusal(char: str, pos: int) -> str:
    if char in _REFUSED_CHARS:
        return f"{_REFUSED_CHARS[char]} (offset {pos})"
    if not char.isascii():
        return f"non-ASCII character U+{ord(char):04X} at offset {pos}; statements are plain ASCII"
    return f"unexpected character {char!r} at offset {pos}"


_END = _Token("end", "", -1)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


class _Tokens:
    """Tokens plus bracket structure, with out-of-range reads giving an "end" token."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.items = tokens
        self.enclosing: list[int | None] = []  # index of the innermost open bracket
        self.opener: dict[int, int] = {}  # closing bracket index -> opening index
        self.closer: dict[int, int] = {}  # opening bracket index -> closing index
        stack: list[int] = []
        for i, tok in enumerate(tokens):
            self.enclosing.append(stack[-1] if stack else None)
            if tok.kind != "punct":
                continue
            if tok.text in ("(", "[", "{"):
                stack.append(i)
            elif tok.text in (")", "]", "}"):
                if not stack or _PAIRS[tokens[stack[-1]].text] != tok.text:
                    raise CypherRejected(f"unbalanced {tok.text!r} at offset {tok.pos}")
                self.opener[i] = stack.pop()
                self.closer[self.opener[i]] = i
        if stack:
            raise CypherRejected(f"unclosed {tokens[stack[-1]].text!r} at offset {tokens[stack[-1]].pos}")

    def __getitem__(self, i: int) -> _Token:
        return self.items[i] if 0 <= i < len(self.items) else _END


# ---------------------------------------------------------------- static check

_READ_CLAUSES = frozenset(
    {"MATCH", "OPTIONAL", "WHERE", "WITH", "RETURN", "ORDER", "BY", "SKIP", "LIMIT",
     "UNWIND", "UNION", "CALL", "YIELD"}
)
# Every other clause or command keyword Cypher 5 (and 25) knows. A name in
# keyword position that is one of these is refused, even if it is meant as a
# variable (`MATCH (set)`): templates can pick another name.
_OTHER_CLAUSES = frozenset(
    {"CREATE", "MERGE", "DELETE", "DETACH", "NODETACH", "SET", "REMOVE", "DROP", "FOREACH",
     "LOAD", "CSV", "PERIODIC", "COMMIT", "TRANSACTIONS", "USE", "FINISH", "INSERT", "SHOW",
     "TERMINATE", "ALTER", "GRANT", "DENY", "REVOKE", "START", "STOP", "ENABLE", "RENAME",
     "DEALLOCATE", "REALLOCATE", "OFFSET", "LET", "FILTER", "NEXT", "EXPLAIN", "PROFILE", "CYPHER"}
)
_CLOSED_NAMESPACES = frozenset({"apoc", "dbms", "db"})
# Built-in function namespaces (point.distance, vector.similarity.cosine, ...).
_FUNCTION_NAMESPACES = frozenset(
    {"point", "vector", "date", "datetime", "localdatetime", "localtime", "time", "duration"}
)
_CONNECTORS = ("-", "->", "<-")


def check_statement(cypher: str, params: Mapping[str, Any], limits: GuardLimits = DEFAULT_LIMITS) -> None:
    """Refuse ``cypher`` unless it is one parameterised, read-only, bounded statement.

    Raises:
        CypherRejected: naming the first rule the statement breaks.
    """
    toks = _checked_structure(cypher, limits)
    _check_parameters(toks.items, params)
    _check_limits(toks, params, limits)


@lru_cache(maxsize=512)
def _checked_structure(cypher: str, limits: GuardLimits) -> _Tokens:
    """The checks that depend on the text alone, once per statement: the
    service runs the same templates over and over (a refusal raises, and
    exceptions are not cached, so a refused text is checked every time)."""
    tokens = _tokenize(cypher)
    if not tokens:
        raise CypherRejected("the statement is empty")
    toks = _Tokens(tokens)
    for i, tok in enumerate(tokens):
        # names after "." and before ":" in a map are keys, not clauses
        if tok.kind == "name" and toks[i - 1].text != "." and not _is_map_key(toks, i):
            _check_word(toks, i, limits)
        elif tok.kind == "punct":
            _check_quantifier(toks, i, limits)
    return toks


def _is_map_key(toks: _Tokens, i: int) -> bool:
    """``limit`` in ``{limit: $k}`` (a procedure's options map) is a key."""
    enclosing = toks.enclosing[i]
    return toks[i + 1].text == ":" and enclosing is not None and toks[enclosing].text == "{"


def _check_word(toks: _Tokens, i: int, limits: GuardLimits) -> None:
    tok = toks[i]
    if tok.word in _OTHER_CLAUSES:
        raise CypherRejected(
            f"{tok.text!r} at offset {tok.pos} is not allowed: only read clauses "
            f"({', '.join(sorted(_READ_CLAUSES))}) may be used"
        )
    if tok.word == "OPTIONAL" and toks[i + 1].word != "MATCH":
        raise CypherRejected(f"OPTIONAL at offset {tok.pos} must be followed by MATCH")
    if tok.word == "CALL":
        _check_call(toks, i)
        return
    parts, after = _dotted_name(toks, i)
    name = ".".join(parts)
    if toks[i - 1].word == "CALL":
        if name not in limits.allowed_procedures:
            allowed = ", ".join(sorted(limits.allowed_procedures))
            raise CypherRejected(f"procedure {name!r} is not allowed (allowed: {allowed})")
    elif parts[0].lower() in _CLOSED_NAMESPACES:
        raise CypherRejected(f"{name!r}: the apoc/dbms/db namespaces are closed outside allowed CALLs")
    elif len(parts) > 1 and toks[after].text == "(" and parts[0].lower() not in _FUNCTION_NAMESPACES:
        raise CypherRejected(f"function {name!r} is not allowed (only built-in namespaces)")


def _dotted_name(toks: _Tokens, i: int) -> tuple[list[str], int]:
    """The parts of ``a.b.c`` starting at ``i``, and the index just after it."""
    parts = [toks[i].text]
    while toks[i + 1].text == "." and toks[i + 2].kind == "name":
        parts.append(toks[i + 2].text)
        i += 2
    return parts, i + 1


def _check_call(toks: _Tokens, i: int) -> None:
    """CALL is followed by a procedure name, ``{`` or a scope clause ``(a, b) {``."""
    nxt = toks[i + 1]
    if nxt.kind == "name":  # a procedure: _check_word judges the name at i + 1
        return
    if nxt.text == "(":
        nxt = toks[toks.closer[i + 1] + 1]
    if nxt.text != "{":
        raise CypherRejected(f"CALL at offset {toks[i].pos} must call a procedure or open a subquery")


def _check_quantifier(toks: _Tokens, i: int, limits: GuardLimits) -> None:
    """Variable-length patterns need an explicit upper bound within ``max_depth``."""
    tok, prev = toks[i], toks[i - 1]
    if tok.text == "*" and _in_relationship(toks, i):
        _check_depth(_star_upper(toks, i), tok, limits)
    elif tok.text in ("+", "*", "{") and (prev.text in ("-", "->") or _closes_path(toks, i - 1)):
        upper = _brace_upper(toks, i) if tok.text == "{" else None
        _check_depth(upper, tok, limits)


def _in_relationship(toks: _Tokens, i: int) -> bool:
    opener = toks.enclosing[i]
    return opener is not None and toks[opener].text == "[" and toks[opener - 1].text in ("-", "<-")


def _closes_path(toks: _Tokens, close: int) -> bool:
    """``)`` ending a parenthesised path pattern, as in ``((a)-->(b)){1,3}``."""
    if toks[close].text != ")" or close not in toks.opener:
        return False
    start = toks.opener[close]
    if toks[start - 1].word == "CALL":  # CALL (a) { ... } is a scope clause
        return False
    return any(
        toks[k].text in (")", "]") and toks[k + 1].text in _CONNECTORS for k in range(start, close)
    )


def _star_upper(toks: _Tokens, i: int) -> int | None:
    """Upper bound of ``*``, ``*n``, ``*n..m``, ``*..m``, ``*n..``; None if open."""
    j, lower = i + 1, None
    if toks[j].kind == "number" and toks[j].text.isdigit():
        lower, j = int(toks[j].text), j + 1
    if toks[j].text != "..":
        return lower
    return int(toks[j + 1].text) if toks[j + 1].text.isdigit() else None


def _brace_upper(toks: _Tokens, i: int) -> int | None:
    """Upper bound of a ``{n}``, ``{n,m}``, ``{,m}`` quantifier; None if open."""
    texts = [toks[k].text for k in range(i + 1, i + 5)]
    if texts[0].isdigit() and texts[1] == "}":
        return int(texts[0])
    if texts[0] == ",":
        texts.insert(0, "")
    if texts[1] == "," and texts[2].isdigit() and texts[3] == "}":
        return int(texts[2])
    return None


def _check_depth(upper: int | None, tok: _Token, limits: GuardLimits) -> None:
    if upper is None:
        raise CypherRejected(
            f"variable-length pattern at offset {tok.pos} needs an explicit upper bound "
            f"<= {limits.max_depth} (write *1..{limits.max_depth})"
        )
    if upper > limits.max_depth:
        raise CypherRejected(
            f"variable-length pattern at offset {tok.pos} reaches depth {upper} "
            f"> max_depth {limits.max_depth}"
        )


def _check_parameters(tokens: list[_Token], params: Mapping[str, Any]) -> None:
    """Used and given parameters must match exactly: drift means a template bug."""
    used = {tok.text[1:] for tok in tokens if tok.kind == "param"}
    if missing := sorted(used - set(params)):
        raise CypherRejected(f"missing parameters: {', '.join('$' + p for p in missing)}")
    if unused := sorted(set(params) - used):
        raise CypherRejected(f"parameters not used by the statement: {', '.join(unused)}")


def _check_limits(toks: _Tokens, params: Mapping[str, Any], limits: GuardLimits) -> None:
    """Every LIMIT is a bounded integer, and every top-level UNION part ends with one."""
    items = toks.items
    for i, tok in enumerate(items):
        if tok.word == "LIMIT" and toks[i - 1].text != "." and not _is_map_key(toks, i):
            _check_limit_value(toks, i, params, limits)
    parts: list[list[_Token]] = [[]]
    for i, tok in enumerate(items):
        if tok.word == "UNION" and toks.enclosing[i] is None:
            parts.append([])
        else:
            parts[-1].append(tok)
    for part in parts:
        if len(part) < 2 or part[-2].word != "LIMIT":
            raise CypherRejected(
                "the statement (each UNION part) must end with LIMIT n or LIMIT $param, "
                f"n <= {limits.max_limit}"
            )


def _check_limit_value(toks: _Tokens, i: int, params: Mapping[str, Any], limits: GuardLimits) -> None:
    value_tok, after = toks[i + 1], toks[i + 2]
    if value_tok.kind not in ("number", "param") or not (
        after.kind == "end" or after.text == "}" or after.word in _READ_CLAUSES
    ):
        raise CypherRejected(f"LIMIT at offset {toks[i].pos} takes a single integer or $parameter")
    if value_tok.kind == "param":
        value = params.get(value_tok.text[1:])
    else:
        value = int(value_tok.text) if value_tok.text.isdigit() else value_tok.text
    if isinstance(value, bool) or not isinstance(value, int):
        raise CypherRejected(f"LIMIT {value_tok.text} must be an integer, got {value!r}")
    if not 0 <= value <= limits.max_limit:
        raise CypherRejected(f"LIMIT {value} is outside 0..{limits.max_limit}")


# ---------------------------------------------------------------- plan check

# Operator-name prefixes of everything that writes or administers; no read
# operator starts with any of them.
_WRITE_OPERATORS = (
    "Create", "Merge", "Delete", "DetachDelete", "Set", "Remove", "LoadCSV", "Foreach",
    "Transaction", "Lock", "EmptyResult", "Drop", "Alter", "Grant", "Deny", "Revoke",
    "Show", "Terminate", "Start", "Stop",
)
_FULL_SCANS = frozenset({"AllNodesScan", "DirectedAllRelationshipsScan", "UndirectedAllRelationshipsScan"})
# The planner caps estimates below a LIMIT, so the row threshold mostly bites
# where an ORDER BY or an aggregation has to see every row first.
_SIZED_OPERATORS = (
    "NodeByLabelScan", "UnionNodeByLabelsScan", "IntersectionNodeByLabelsScan",
    "SubtractionNodeByLabelsScan", "DirectedRelationshipTypeScan", "UndirectedRelationshipTypeScan",
    "Expand", "OptionalExpand", "VarLengthExpand", "BFSPruningVarLengthExpand", "Repeat",
    "ShortestPath", "StatefulShortestPath", "CartesianProduct",
)
_VAR_LENGTH_OPERATORS = (
    "VarLengthExpand", "BFSPruningVarLengthExpand", "ShortestPath", "Repeat", "StatefulShortestPath",
)
_STAR = re.compile(r"\[[^\[\]]*\*(\d*)(\.\.)?(\d*)[^\[\]]*\]")  # -[r*1..3]-
_BRACES = re.compile(r"\{\s*(\d*)\s*,\s*(\d*)\s*\}")  # (...){1, 3}


def check_plan(plan: Mapping[str, Any], limits: GuardLimits = DEFAULT_LIMITS) -> None:
    """Refuse a plan (``ResultSummary.plan``) that writes, scans everything or fans out.

    Raises:
        CypherRejected: naming the operator and why.
    """
    for operator, args in _operators(plan):
        details = " ".join(str(args.get("Details", "")).split())  # some span lines
        rows = float(args.get("EstimatedRows", 0.0))
        if operator.startswith(_WRITE_OPERATORS):
            raise CypherRejected(f"the plan writes or administers ({operator}: {details})")
        if operator in _FULL_SCANS:
            raise CypherRejected(f"the plan scans the whole graph ({operator}); match on a label and key")
        if operator.startswith(_SIZED_OPERATORS) and rows > limits.max_estimated_rows:
            raise CypherRejected(
                f"{operator} ({details}) is estimated at {rows:.0f} rows > {limits.max_estimated_rows:.0f}"
            )
        if operator.startswith(_VAR_LENGTH_OPERATORS):
            _check_plan_depth(operator, details, limits)
        if operator == "ProcedureCall":
            name = details.split("(", 1)[0].strip()
            if name not in limits.allowed_procedures:
                raise CypherRejected(f"the plan calls procedure {name!r}, which is not allowed")


def _operators(plan: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(operator, arguments) for every node; ``Expand(All)@neo4j`` -> ``Expand(All)``."""
    stack = [plan]
    while stack:
        node = stack.pop()
        operator = str(node.get("operatorType", "")).split("@", 1)[0].removeprefix("Partitioned")
        # The driver's dict says "args"; the documented name is "arguments".
        yield operator, node.get("args") or node.get("arguments") or {}
        stack.extend(node.get("children") or [])


def _check_plan_depth(operator: str, details: str, limits: GuardLimits) -> None:
    uppers = [m[3] if m[2] else m[1] for m in _STAR.finditer(details)]
    uppers += [m[2] for m in _BRACES.finditer(details)]
    for upper in uppers:
        if not upper or int(upper) > limits.max_depth:
            raise CypherRejected(f"{operator} ({details}) is unbounded or deeper than {limits.max_depth}")


# ---------------------------------------------------------------- guard


class CypherGuard:
    """Runs a statement only after both checks pass, in a READ transaction.

    Plans are cached per statement text (templates repeat, parameters vary), so
    EXPLAIN costs one round trip per template, not per call.

    Args:
        graph: the store that explains and runs statements.
        limits: depth, LIMIT, plan-size and procedure limits.
        plan_cache_size: how many statement plans to keep (least recently used goes).
    """

    def __init__(
        self, graph: GraphStore, limits: GuardLimits = DEFAULT_LIMITS, *, plan_cache_size: int = 256
    ) -> None:
        self._graph = graph
        self.limits = limits
        self._plans: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._plan_cache_size = plan_cache_size
        self._lock = threading.Lock()
        self.rejections = 0  # statements refused, by either check
        self.explains = 0  # EXPLAIN round trips (cache misses)

    def run(self, cypher: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Check ``cypher`` with ``params``, then run it read-only.

        Raises:
            CypherRejected: a check refused the statement; nothing ran.
            GraphStoreError: Neo4j failed (syntax error, timeout, unreachable).
        """
        try:
            check_statement(cypher, params, self.limits)
            check_plan(self._plan(cypher, params), self.limits)
        except CypherRejected:
            with self._lock:
                self.rejections += 1
            raise
        return self._graph.read(cypher, **params)

    def _plan(self, cypher: LiteralString, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if cypher in self._plans:
                self._plans.move_to_end(cypher)
                return self._plans[cypher]
        plan = self._graph.explain(cypher, params)
        with self._lock:
            self.explains += 1
            self._plans[cypher] = plan
            while len(self._plans) > self._plan_cache_size:
                self._plans.popitem(last=False)
        return plan
