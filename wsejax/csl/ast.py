"""The CSL abstract syntax tree: frozen dataclasses, each with its source position.

The parser (`wsejax.csl.parser`) builds these nodes; the comptime evaluator
(`wsejax.csl.comptime`) reads them. Nothing here evaluates anything.

Every node has `pos` (file, line, column; 1-based), used by `CslError` to point at the source.
Operators are kept as their source spelling (`"+"`, `"+="`, `"and"`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Union

__all__ = [
    "ArrayLit", "ArrayType", "Assign", "Binary", "Block", "BoolLit", "Break", "Builtin", "Call",
    "ComptimeBlock", "ComptimeExpr", "Continue", "Decl", "Deref", "EnumLit", "EnumType", "Expr",
    "ExprStmt", "Field", "File", "FloatLit", "FnDecl", "FnParam", "FnType", "For", "Ident", "If",
    "IfExpr", "Index", "IntLit", "LayoutBlock", "ParamDecl", "Pos", "PtrType", "Return", "Stmt",
    "StringLit", "StructLit", "StructType", "SwitchExpr", "SwitchProng", "TaskDecl",
    "TensorAccess", "TupleLit", "Unary", "UndefinedLit", "VarDecl", "While", "walk",
]


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Pos("<builtin>", 0, 0)


# ------------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class Ident:
    """A name: a variable, constant, type (`i16`, `f32`, `void`, `bool`, `type`,
    `comptime_int`, `anytype`, `color`, `mem1d_dsd`, ...) or a direction (`EAST`, `RAMP`)."""

    name: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class IntLit:
    """An integer literal (decimal, 0x hex, 0o octal, 0b binary, `_` separators) or a
    character literal `'a'` (its code point)."""

    value: int
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class FloatLit:
    value: float
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class StringLit:
    """A string literal with escapes resolved (`\\n`, `\\t`, `\\\\`, `\\"`, `\\x41`)."""

    value: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class BoolLit:
    value: bool
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class UndefinedLit:
    """`undefined`."""

    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class EnumLit:
    """`.name` standing alone (an enum literal)."""

    name: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Builtin:
    """`@name(args...)`; `name` without the `@`."""

    name: str
    args: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Call:
    """`fn(args...)`."""

    fn: Expr
    args: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Field:
    """`obj.name`."""

    obj: Expr
    name: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Index:
    """`obj[i]` or `obj[i, j, ...]` (multi-dimensional arrays)."""

    obj: Expr
    indices: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Deref:
    """`ptr.*`."""

    obj: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Unary:
    """`-a`, `!a`, `~a`, `&a` (address-of)."""

    op: str
    a: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Binary:
    """`a op b`: `or and == != < <= > >= | ^ & << >> + - * / %` and `++` (array concat)."""

    op: str
    a: Expr
    b: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class StructLit:
    """`.{ .a = 1, .b = x }` (`type` None) or `T { .a = 1 }` (a named struct's literal)."""

    type: Expr | None
    fields: tuple[tuple[str, Expr], ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class TupleLit:
    """`.{ a, b }`; `.{}` is an empty tuple (also usable as an empty struct)."""

    items: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ArrayLit:
    """`[3]i16 { 1, 2, 3 }` (`type` is an ArrayType; `[_]T{...}` has a None dimension)."""

    type: Expr
    items: tuple[Expr, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ArrayType:
    """`[N]T` or `[N, M]T`; a dimension is None for `[_]T`."""

    dims: tuple[Expr | None, ...]
    elem: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class PtrType:
    """`*T`, `*const T` (kind "single") or `[*]T`, `[*]const T` (kind "many")."""

    kind: str
    const: bool
    elem: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class FnType:
    """`fn(T1, T2) R`."""

    params: tuple[Expr, ...]
    ret: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class StructType:
    """`struct { x: i16, y: f32 = 1.0 }`: fields `(name, type, default or None)`."""

    fields: tuple[tuple[str, Expr, Expr | None], ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class EnumType:
    """`enum(u16) { a, b = 4, c }`: members `(name, value or None)`; `tag` may be None."""

    tag: Expr | None
    members: tuple[tuple[str, Expr | None], ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class IfExpr:
    """`if (c) a else b` used as an expression; `b` is None where the `else` is left out."""

    cond: Expr
    a: Expr
    b: Expr | None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class SwitchProng:
    """`v1, v2 => body` (`values` empty for `else`). `body` is an expression or a Block."""

    values: tuple[Expr, ...]
    body: Expr | Block
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class SwitchExpr:
    subject: Expr
    prongs: tuple[SwitchProng, ...]
    pos: Pos = field(default=NOWHERE, compare=False)
    stmt: bool = False        # written as a statement: its prongs' values are discarded


@dataclass(frozen=True)
class ComptimeExpr:
    """`comptime expr`."""

    expr: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class TensorAccess:
    """`|i, j|{L0, L1} -> A[e0, e1]`."""

    vars: tuple[str, ...]
    extents: tuple[Expr, ...]
    body: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


Expr = Union[Ident, IntLit, FloatLit, StringLit, BoolLit, UndefinedLit, EnumLit, Builtin, Call,
             Field, Index, Deref, Unary, Binary, StructLit, TupleLit, ArrayLit, ArrayType,
             PtrType, FnType, StructType, EnumType, IfExpr, SwitchExpr, ComptimeExpr,
             TensorAccess, "Block"]


# ------------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True)
class Block:
    """`{ stmts }`, or `label: { ... }` (a labelled block is also an expression, valued by
    `break :label value`). `comptime` marks `comptime { ... }` inside a function."""

    stmts: tuple[Stmt, ...]
    label: str | None = None
    comptime: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class VarDecl:
    """`const x: T = e;`, `var x: T = e;`, `comptime var x = e;`, with optional `export`,
    `extern`, `align(N)`, `linksection("s")`, `linkname("s")` (kept, not interpreted: `attrs`
    names those given, and the compiler warns that they are ignored)."""

    name: str
    const: bool
    type: Expr | None
    value: Expr | None
    comptime: bool = False
    export: bool = False
    extern: bool = False
    align: Expr | None = None
    attrs: tuple[str, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ParamDecl:
    """`param name: T = default;` (type and default optional)."""

    name: str
    type: Expr | None
    default: Expr | None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class FnParam:
    """A function parameter; `type` is an expression (`anytype` is Ident("anytype"))."""

    name: str
    type: Expr
    comptime: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class FnDecl:
    name: str
    params: tuple[FnParam, ...]
    ret: Expr
    body: Block | None
    inline: bool = False
    export: bool = False
    extern: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class TaskDecl:
    name: str
    params: tuple[FnParam, ...]
    body: Block
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ComptimeBlock:
    """A top-level `comptime { ... }`."""

    body: Block
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class LayoutBlock:
    """The top-level `layout { ... }`."""

    body: Block
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ExprStmt:
    expr: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Assign:
    """`target op value;` with op `=`, `+=`, `-=`, `*=`, `/=`, `%=`, `<<=`, `>>=`, `&=`, `|=`,
    `^=`."""

    target: Expr
    op: str
    value: Expr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class If:
    """`if (cond) then else orelse` (an `else if` is an If in `orelse`)."""

    cond: Expr
    then: Block
    orelse: Block | If | None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class While:
    """`label: inline while (cond) : (cont) body`."""

    cond: Expr
    cont: Stmt | None
    body: Block
    label: str | None = None
    inline: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class For:
    """`label: inline for (iterable) |capture, index| body` (index may be None)."""

    iterable: Expr
    capture: str
    index: str | None
    body: Block
    label: str | None = None
    inline: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Return:
    value: Expr | None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Break:
    label: str | None
    value: Expr | None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Continue:
    label: str | None
    pos: Pos = field(default=NOWHERE, compare=False)


Stmt = Block | VarDecl | ExprStmt | Assign | If | While | For | Return | Break | Continue
Decl = VarDecl | ParamDecl | FnDecl | TaskDecl | ComptimeBlock | LayoutBlock


@dataclass(frozen=True)
class File:
    """A parsed source file: its top-level declarations in order, and its text (for carets)."""

    path: str
    decls: tuple[Decl, ...]
    source: str = field(default="", compare=False, repr=False)


def walk(node):
    """Every node of the subtree under `node`, itself included (and the tuples that hold
    them), in no particular order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if is_dataclass(n):
            stack.extend(getattr(n, f.name) for f in fields(n) if f.name != "pos")
        elif isinstance(n, tuple):
            stack.extend(n)
