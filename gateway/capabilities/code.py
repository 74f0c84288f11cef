"""The normal form of a program given to `execute_code`: its literals lifted into parameters, and its hash.

Two runs of one program with other literal values (another repository path, another search word) share one
normal form and so one capability, called later with new values for its parameters. Lifted are the literals that
are data: arguments of a call (but the tool id, the first argument of ``call``), values of a dict, and the value
of a module-level ``name = literal``. The rest (keys, indices, comparisons, formats) is the program's shape and
stays. The code is only parsed here, never run: it runs in the sandbox.

A parameter is named after what it fills (the dict key, the keyword, the assigned name; ``p<n>`` otherwise) and
the normal form binds it by that name, so the capability's code runs with the parameters as its inputs.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

_TOOL_CALLERS = frozenset({"call"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


@dataclass(frozen=True)
class NormalCode:
    """`code` with its data literals replaced by parameter names; `parameters_schema` their JSON Schema with the
    observed values as defaults; `hash` identifies the shape (formatting and comments aside)."""

    code: str
    parameters_schema: dict[str, Any]
    defaults: dict[str, Any]
    hash: str


class CodeParseError(ValueError):
    """The code is not Python the normaliser can read (the sandbox reports the details)."""


def parse(code: str) -> ast.Module:
    """`code` as a module, top-level ``await`` allowed; `CodeParseError` when it does not parse."""
    try:
        tree = compile(code, "<code>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                       dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise CodeParseError(str(exc)) from None
    assert isinstance(tree, ast.Module)
    return tree


def normalise(code: str) -> NormalCode:
    """The normal form of `code` (see the module docstring)."""
    tree = parse(code)
    lifter = _Lifter()
    tree = lifter.visit(tree)
    ast.fix_missing_locations(tree)
    text = ast.unparse(tree)
    digest = hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()
    return NormalCode(text, lifter.schema(), dict(lifter.defaults), digest)


def tools_named(code: str) -> list[str]:
    """The tool ids the code names as literal first arguments of ``call``, in order, once each."""
    named: dict[str, None] = {}
    for node in ast.walk(parse(code)):
        if isinstance(node, ast.Call) and _is_call_of(node, _TOOL_CALLERS) and node.args:
            tool = _literal_text(node.args[0])
            if tool is not None:
                named.setdefault(tool, None)
    return list(named)


def module_members(code: str, module: str) -> list[str]:
    """The members of `module` the code reaches: ``from module import a, b`` and ``alias.c`` for each
    ``import module [as alias]``, in order, once each (none when the code does not parse)."""
    try:
        tree = parse(code)
    except CodeParseError:
        return []
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for a in node.names if a.name == module}
    members: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == module and not node.level:
            members.update((a.name, None) for a in node.names if a.name != "*")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            members.setdefault(node.attr, None)
    return list(members)


@dataclass
class _Lifter(ast.NodeTransformer):
    defaults: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        keep_first = _is_call_of(node, _TOOL_CALLERS)
        node.func = self.visit(node.func)
        node.args = [arg if keep_first and n == 0 else self._lift(arg, None) for n, arg in enumerate(node.args)]
        for kw in node.keywords:
            kw.value = self._lift(kw.value, kw.arg)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        node.keys = [self.visit(k) if k is not None else None for k in node.keys]
        node.values = [self._lift(v, _literal_text(k) if k is not None else None) for k, v in zip(
            node.keys, node.values, strict=True)]
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        target = node.targets[0] if len(node.targets) == 1 else None
        name = target.id if isinstance(target, ast.Name) else None
        node.value = self._lift(node.value, name)
        return node

    def _lift(self, node: ast.expr, hint: str | None) -> ast.expr:
        if not _is_data(node):
            return self.visit(node)  # type: ignore[no-any-return]
        assert isinstance(node, ast.Constant)
        name = self._name(hint)
        self.defaults[name] = node.value
        return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)

    def _name(self, hint: str | None) -> str:
        usable = hint is not None and _IDENTIFIER.match(hint) is not None and not keyword.iskeyword(hint)
        base = hint if usable and hint is not None else f"p{len(self.defaults) + 1}"
        name, n = base, 2
        while name in self.defaults:
            name, n = f"{base}_{n}", n + 1
        return name

    def schema(self) -> dict[str, Any]:
        properties = {name: {"type": _json_type(value), "default": value} for name, value in self.defaults.items()}
        return {"type": "object", "properties": properties, "additionalProperties": False}


def _is_data(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (str, int, float)


def _is_call_of(node: ast.AST, names: frozenset[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _literal_text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _json_type(value: Any) -> str:
    return {str: "string", int: "integer", float: "number"}[type(value)]
