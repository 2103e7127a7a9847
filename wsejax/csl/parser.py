"""Parse CSL source text into the `wsejax.csl.ast` tree.

Contract:
- `parse(source, path="<csl>") -> ast.File` and `parse_file(path) -> ast.File` return frozen AST
  nodes whose `pos` is `Pos(path, line, col)` (1-based). A node's position is where its source
  text starts, except `Binary` (the operator) and `Field` (the field name), so that an error about
  them points at the part at fault.
- Every malformed input raises `CslError` (file, line, column, the source line, a caret) and
  nothing else: lark's `UnexpectedCharacters` / `UnexpectedToken` / `UnexpectedEOF` and any other
  lark error are translated into a readable message (`unexpected ')' — expected an expression`,
  `unterminated string`, `missing ';' after '1'`, ...). Input that parses but that wsejax does not
  support also raises `CslError` (`asm`: "inline assembly is not supported").
- The syntax itself lives in `grammar.lark` (LALR(1), one dangling-else conflict resolved as
  Zig does); this module only maps parse tree rules to AST nodes and errors to messages. The
  lark parser is built once, lazily.

Example:
    >>> parse("const M: i16 = 4;", "k.csl").decls[0].value
    IntLit(value=4, pos=Pos(file='k.csl', line=1, col=16))
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from wsejax.csl import ast
from wsejax.errors import CslError

__all__ = ["parse", "parse_file"]

_GRAMMAR = Path(__file__).with_name("grammar.lark")
_PARSER: lark.Lark | None = None


class _NotCsl(Exception):
    """Raised by a lexer callback for text that lexes but is not CSL; turned into a CslError."""

    def __init__(self, message: str, token: Token):
        super().__init__(message)
        self.message = message
        self.token = token


def _reject(message: str):
    def callback(token: Token) -> Token:
        raise _NotCsl(message, token)

    return callback


def _parser() -> lark.Lark:
    global _PARSER
    if _PARSER is None:
        _PARSER = lark.Lark(
            _GRAMMAR.read_text(encoding="utf-8"),
            parser="lalr",
            lexer="basic",
            propagate_positions=True,
            maybe_placeholders=True,
            # lark keeps the analysed grammar in a file of the temp directory, keyed by the
            # grammar and lark's version: a new process loads it in a fifth of the time
            cache=True,
            lexer_callbacks={
                "ASM": _reject("inline assembly is not supported"),
                "BLOCK_COMMENT": _reject("block comments /* */ are not CSL: use //"),
            },
        )
    return _PARSER


def parse(source: str, path: str = "<csl>") -> ast.File:
    """Parse CSL `source` (named `path` in positions and errors) into an `ast.File`.

    Raises:
        CslError: the source is not valid CSL, or uses a construct wsejax does not support.
    """
    try:
        tree = _parser().parse(source)
        decls = _ToAst(path, source).transform(tree)
    except _NotCsl as e:
        raise _error(e.message, path, source, e.token.line, e.token.column) from None
    except UnexpectedInput as e:
        raise _syntax_error(e, path, source) from None
    except VisitError as e:
        cause = _root_cause(e)
        if isinstance(cause, CslError):
            raise cause from None
        if isinstance(cause, RecursionError):
            raise _error("expression nested too deeply", path, source, 1, 1) from None
        raise
    except RecursionError:
        raise _error("expression nested too deeply", path, source, 1, 1) from None
    except lark.exceptions.LarkError as e:  # anything else lark may raise on bad input
        raise _error(f"cannot parse: {e}", path, source, 1, 1) from None
    return ast.File(path, tuple(decls), source)


def read_source(path: str | Path) -> str:
    """The text of the CSL file at `path`. CSL sources are UTF-8: a file that is not (or that
    cannot be read) is a CslError naming the file, with the line, column and byte offset of the
    first byte that is not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CslError(f"cannot read {path}: {e.strerror}", str(path)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        start = data.rfind(b"\n", 0, e.start) + 1
        end = data.find(b"\n", e.start)
        line = data[start:end if end >= 0 else len(data)].decode("utf-8", "replace")
        col = len(data[start:e.start].decode("utf-8", "replace")) + 1
        raise CslError(f"{path} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset "
                       f"{e.start} ({e.reason})", str(path), data.count(b"\n", 0, e.start) + 1,
                       col, line) from None


def parse_file(path: str | Path) -> ast.File:
    """Read and parse the CSL file at `path` (positions carry `str(path)`)."""
    return parse(read_source(path), str(path))


# ------------------------------------------------------------------------------------------------
# Parse tree -> AST


def _root_cause(e: BaseException) -> BaseException:
    while isinstance(e, VisitError):
        e = e.orig_exc
    return e


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@v_args(meta=True)
class _ToAst(Transformer):
    """One method per grammar rule (or alias); each returns an AST node or a helper value."""

    def __init__(self, path: str, source: str):
        super().__init__(visit_tokens=False)
        self.path = path
        self.source = source

    # -- helpers

    def _pos(self, meta) -> ast.Pos:
        if getattr(meta, "empty", True):
            return ast.Pos(self.path, 0, 0)
        return ast.Pos(self.path, meta.line, meta.column)

    def _tpos(self, tok: Token) -> ast.Pos:
        return ast.Pos(self.path, tok.line, tok.column)

    def _fail(self, message: str, tok: Token, offset: int = 0) -> CslError:
        return _error(message, self.path, self.source, tok.line, tok.column + offset)

    def _unescape(self, tok: Token, body: str) -> str:
        def one(m: re.Match) -> str:
            e = m.group(1)
            if e in _SIMPLE_ESCAPES:
                return _SIMPLE_ESCAPES[e]
            if e[0] == "x" and len(e) == 3:
                return chr(int(e[1:], 16))
            if e[0] == "u" and len(e) > 1:
                code = int(e[2:-1], 16)
                if code <= 0x10FFFF:
                    return chr(code)
            raise self._fail(f"invalid escape sequence '\\{e}'", tok, m.start() + 1)

        return _ESCAPE.sub(one, body)

    @staticmethod
    def _opt(children) -> list:
        return [c for c in children if c is not None]

    # -- top level

    def start(self, meta, children):
        return children

    def param_decl(self, meta, c):
        name, type_, default = c
        return ast.ParamDecl(str(name), type_, default, pos=self._pos(meta))

    def var_decl(self, meta, c):
        (storage, comptime, mut), name, type_, (align, section, linkname), value = c
        attrs = tuple(a for a, v in (("align", align), ("linksection", section),
                                     ("linkname", linkname)) if v is not None)
        return ast.VarDecl(
            str(name), mut.type == "CONST", type_, value,
            comptime=comptime is not None,
            export=storage is not None and storage.type == "EXPORT",
            extern=storage is not None and storage.type == "EXTERN",
            align=align, attrs=attrs, pos=self._pos(meta))

    def align(self, meta, c):
        return c[0]

    linksection = linkname = align  # accepted, not interpreted

    def var_mods(self, meta, c):
        return c

    var_attrs = var_mods

    def fn_decl(self, meta, c):
        storage, inline, name, params, ret, *body = c
        return ast.FnDecl(
            str(name), params or (), ret, body[0] if body else None,
            inline=inline is not None,
            export=storage is not None and storage.type == "EXPORT",
            extern=storage is not None and storage.type == "EXTERN",
            pos=self._pos(meta))

    def task_decl(self, meta, c):
        name, params, _ret, body = c
        return ast.TaskDecl(str(name), params or (), body, pos=self._pos(meta))

    def fn_params(self, meta, c):
        return tuple(self._opt(c))

    def fn_param(self, meta, c):
        comptime, name, type_ = c
        return ast.FnParam(str(name), type_, comptime=comptime is not None, pos=self._pos(meta))

    def comptime_block(self, meta, c):
        return ast.ComptimeBlock(c[0], pos=self._pos(meta))

    def layout_block(self, meta, c):
        return ast.LayoutBlock(c[0], pos=self._pos(meta))

    # -- statements

    def block(self, meta, c):
        return ast.Block(tuple(c), pos=self._pos(meta))

    def comptime_stmt(self, meta, c):
        return replace(c[0], comptime=True, pos=self._pos(meta))

    def comptime_expr_stmt(self, meta, c):
        pos = self._pos(meta)
        return ast.ExprStmt(ast.ComptimeExpr(c[0], pos=pos), pos=pos)

    def labelled_stmt(self, meta, c):
        label, node = c
        return replace(node, label=str(label), pos=self._pos(meta))

    def switch_stmt(self, meta, c):
        return ast.ExprStmt(replace(c[0], stmt=True), pos=self._pos(meta))

    def assign(self, meta, c):
        target, op, value = c
        return ast.Assign(target, str(op), value, pos=self._pos(meta))

    def expr_stmt(self, meta, c):
        return ast.ExprStmt(c[0], pos=self._pos(meta))

    def return_stmt(self, meta, c):
        return ast.Return(c[0], pos=self._pos(meta))

    def break_stmt(self, meta, c):
        label, value = c
        return ast.Break(None if label is None else str(label), value, pos=self._pos(meta))

    def continue_stmt(self, meta, c):
        label = c[0]
        return ast.Continue(None if label is None else str(label), pos=self._pos(meta))

    def _as_block(self, stmt) -> ast.Block:
        if stmt is None or isinstance(stmt, ast.Block):
            return stmt
        return ast.Block((stmt,), pos=stmt.pos)

    def if_stmt(self, meta, c):
        cond, then, *rest = c
        orelse = rest[0] if rest else None
        if not isinstance(orelse, ast.If):
            orelse = self._as_block(orelse)
        return ast.If(cond, self._as_block(then), orelse, pos=self._pos(meta))

    def while_stmt(self, meta, c):
        inline, cond, cont, body = c
        return ast.While(cond, cont, self._as_block(body), inline=inline is not None,
                         pos=self._pos(meta))

    def while_cont(self, meta, c):
        return c[0]

    def for_stmt(self, meta, c):
        inline, iterable, _pipe, capture, index, _pipe2, body = c
        return ast.For(iterable, str(capture), None if index is None else str(index),
                       self._as_block(body), inline=inline is not None, pos=self._pos(meta))

    # -- top-level expression forms

    def if_expr(self, meta, c):
        cond, a, b = c
        return ast.IfExpr(cond, a, b, pos=self._pos(meta))

    def void_block(self, meta, c):
        return ast.Block((), pos=self._pos(meta))

    def labelled_block(self, meta, c):
        label, block = c
        return replace(block, label=str(label), pos=self._pos(meta))

    def comptime_expr(self, meta, c):
        return ast.ComptimeExpr(c[0], pos=self._pos(meta))

    def switch_expr(self, meta, c):
        subject, *prongs = self._opt(c)
        return ast.SwitchExpr(subject, tuple(prongs), pos=self._pos(meta))

    def prong_e(self, meta, c):
        values, body = c if len(c) == 2 else ((), c[0])
        return ast.SwitchProng(values, body, pos=self._pos(meta))

    prong_b = prong_e

    def prong_values(self, meta, c):
        return tuple(c)

    def tensor_access(self, meta, c):
        names = [str(t) for t in c[:-2] if t.type == "NAME"]
        extents, body = c[-2], c[-1]
        return ast.TensorAccess(tuple(names), extents, body, pos=self._pos(meta))

    # -- operators

    def binary(self, meta, c):
        a, op, b = c
        return ast.Binary(str(op), a, b, pos=self._tpos(op))

    def unary(self, meta, c):
        op, a = c
        return ast.Unary(str(op), a, pos=self._pos(meta))

    def typed_init(self, meta, c):
        type_, (kind, entries) = c
        pos = self._pos(meta)
        if kind == "fields" or (kind == "empty" and not isinstance(type_, ast.ArrayType)):
            return ast.StructLit(type_, entries, pos=pos)
        return ast.ArrayLit(type_, entries, pos=pos)

    # -- types

    def array_type(self, meta, c):
        dims, elem = c
        dims = tuple(None if isinstance(d, ast.Ident) and d.name == "_" else d for d in dims)
        return ast.ArrayType(dims, elem, pos=self._pos(meta))

    def many_ptr_type(self, meta, c):
        _star, const, elem = c
        return ast.PtrType("many", const is not None, elem, pos=self._pos(meta))

    def ptr_type(self, meta, c):
        _star, const, elem = c
        return ast.PtrType("single", const is not None, elem, pos=self._pos(meta))

    def fn_type(self, meta, c):
        params, ret = c
        return ast.FnType(params or (), ret, pos=self._pos(meta))

    def fn_type_params(self, meta, c):
        return tuple(self._opt(c))

    def named_fn_type_param(self, meta, c):
        return c[1]

    def struct_type(self, meta, c):
        return ast.StructType(tuple(self._opt(c)), pos=self._pos(meta))

    def struct_field(self, meta, c):
        name, type_, default = c
        return (str(name), type_, default)

    def enum_type(self, meta, c):
        tag, *members = c
        return ast.EnumType(tag, tuple(self._opt(members)), pos=self._pos(meta))

    def enum_member(self, meta, c):
        name, value = c
        return (str(name), value)

    # -- postfix

    def call(self, meta, c):
        fn, args = c
        return ast.Call(fn, args or (), pos=self._pos(meta))

    def index(self, meta, c):
        obj, indices = c
        return ast.Index(obj, indices, pos=self._pos(meta))

    def field(self, meta, c):
        obj, name = c
        return ast.Field(obj, str(name), pos=self._tpos(name))

    def deref(self, meta, c):
        return ast.Deref(c[0], pos=self._pos(meta))

    def args(self, meta, c):
        return tuple(self._opt(c))

    def exprs(self, meta, c):
        return tuple(c)

    # -- primaries and literals

    def ident(self, meta, c):
        return ast.Ident(str(c[0]), pos=self._pos(meta))

    def int_lit(self, meta, c):
        text = str(c[0]).replace("_", "")
        base = {"0x": 16, "0o": 8, "0b": 2}.get(text[:2], 10)
        digits = text[2:] if base != 10 else text
        return ast.IntLit(int(digits, base), pos=self._pos(meta))

    def float_lit(self, meta, c):
        text = str(c[0]).replace("_", "")
        try:
            value = float.fromhex(text) if text[:2] == "0x" else float(text)
        except OverflowError:
            raise self._fail("float literal out of range", c[0]) from None
        return ast.FloatLit(value, pos=self._pos(meta))

    def char_lit(self, meta, c):
        tok = c[0]
        value = self._unescape(tok, str(tok)[1:-1])
        if len(value) != 1:
            raise self._fail("a character literal holds exactly one character", tok)
        return ast.IntLit(ord(value), pos=self._pos(meta))

    def string_lit(self, meta, c):
        tok = c[0]
        return ast.StringLit(self._unescape(tok, str(tok)[1:-1]), pos=self._pos(meta))

    def multiline_string_lit(self, meta, c):
        lines = (line.strip()[2:] for line in str(c[0]).split("\n"))
        return ast.StringLit("\n".join(lines), pos=self._pos(meta))

    def true_lit(self, meta, c):
        return ast.BoolLit(True, pos=self._pos(meta))

    def false_lit(self, meta, c):
        return ast.BoolLit(False, pos=self._pos(meta))

    def undefined_lit(self, meta, c):
        return ast.UndefinedLit(pos=self._pos(meta))

    def builtin(self, meta, c):
        name, args = c
        return ast.Builtin(str(name)[1:], args or (), pos=self._pos(meta))

    def enum_lit(self, meta, c):
        return ast.EnumLit(str(c[0]), pos=self._pos(meta))

    def anon_init(self, meta, c):
        kind, entries = c[0]
        pos = self._pos(meta)
        if kind == "fields":
            return ast.StructLit(None, entries, pos=pos)
        return ast.TupleLit(entries, pos=pos)

    # Initializer bodies, `(kind, entries)`; the node is chosen by `typed_init` / `anon_init`.

    def empty_init(self, meta, c):
        return ("empty", ())

    def field_inits(self, meta, c):
        return ("fields", tuple(self._opt(c)))

    def item_inits(self, meta, c):
        return ("items", tuple(self._opt(c)))

    def field_init(self, meta, c):
        name, value = c
        return (str(name), value)


# ------------------------------------------------------------------------------------------------
# Errors


def _source_line(source: str, line: int) -> str | None:
    lines = source.split("\n")
    if 1 <= line <= len(lines):
        return lines[line - 1].rstrip("\r")
    return None


def _error(message: str, path: str, source: str, line: int, col: int) -> CslError:
    return CslError(message, path, line, col, _source_line(source, line))


# Terminals that can start an operand, and those that can follow one (binary and postfix
# operators): an error expecting these says "an expression" / "an operator" instead of a list.
_OPERAND_STARTS = {
    "NAME", "INT", "FLOAT", "STRING", "CHAR", "BUILTIN", "TRUE", "FALSE", "UNDEFINED", "MINUS",
    "BANG", "TILDE", "AMP", "STAR", "PIPE", "LPAR", "LSQB", "DOT", "IF", "SWITCH", "COMPTIME",
    "FN", "STRUCT", "ENUM",
}
_OPERATORS = {
    "OR", "AND", "EQEQ", "NEQ", "LT", "LE", "GT", "GE", "PIPE", "CARET", "AMP", "SHL", "SHR",
    "PLUS", "MINUS", "PLUSPLUS", "STAR", "SLASH", "PERCENT", "LPAR", "LSQB", "DOT", "LBRACE",
    "EQ", "PLUS_EQ", "MINUS_EQ", "STAR_EQ", "SLASH_EQ", "PERCENT_EQ", "SHL_EQ", "SHR_EQ",
    "AMP_EQ", "PIPE_EQ", "CARET_EQ",
}
_COMPARISONS = {"EQEQ", "NEQ", "LT", "LE", "GT", "GE"}
_HUMAN = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "CHAR": "a character literal", "BUILTIN": "a builtin (@name)", "$END": "end of file",
}
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _describe_terminal(name: str) -> str:
    if name in _HUMAN:
        return _HUMAN[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    if isinstance(pattern, lark.lexer.PatternStr):
        return f"'{pattern.value}'"
    return name.lower()


def _describe_expected(expected: set[str]) -> str:
    """`{'SEMICOLON', 'PLUS', ...}` -> "';' or an operator" (at most five items)."""
    expected = set(expected)
    punctuation, keywords, groups = [], [], []
    if "INT" in expected:
        groups.append("an expression")
        expected -= _OPERAND_STARTS
    if "PLUS" in expected:
        groups.append("an operator")
        expected -= _OPERATORS
    for name in sorted(expected, key=_describe_terminal):
        text = _describe_terminal(name)
        (keywords if text[1:2].isalpha() or not text.startswith("'") else punctuation).append(text)
    parts = punctuation + groups + keywords
    if len(parts) > 5:
        parts = parts[:4] + ["..."]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _token_before(source: str, pos: int) -> Token | None:
    """The last token that starts before `pos` (re-lexes the source; errors path only)."""
    prev = None
    try:
        for tok in _parser().lex(source):
            if tok.start_pos >= pos:
                break
            prev = tok
    except Exception:  # a later lexing error is irrelevant here
        pass
    return prev


def _syntax_error(e: UnexpectedInput, path: str, source: str) -> CslError:
    if isinstance(e, UnexpectedCharacters):
        return _error(_bad_character(source, e.pos_in_stream), path, source, e.line, e.column)
    if not isinstance(e, UnexpectedToken):  # UnexpectedEOF (Earley only) and future kinds
        line, col = getattr(e, "line", 1), getattr(e, "column", 1)
        return _error("unexpected end of file", path, source, max(line, 1), max(col, 1))

    tok = e.token
    accepts = _accepts(e)
    expected = _describe_expected(accepts)
    at_end = tok.type == "$END"
    prev = _token_before(source, len(source) if at_end else tok.start_pos)
    if prev is not None and (at_end or "SEMICOLON" in accepts and (
            prev.end_line < tok.line or tok.type == "RBRACE")):
        # Point just past the last good token: that is where the `;` or `}` is missing.
        line, col = prev.end_line, prev.end_column
    else:
        line, col = (1, 1) if at_end else (tok.line, tok.column)
    if at_end:
        return _error(_end_of_file(accepts, expected), path, source, line, col)
    if (line, col) != (tok.line, tok.column):
        return _error(f"missing ';' after '{prev}'", path, source, line, col)
    return _error(_unexpected(tok, accepts, expected), path, source, line, col)


def _accepts(e: UnexpectedToken):
    """The token types the parser would have taken where it failed."""
    try:
        return e.accepts or e.expected
    except Exception:  # the interactive replay is a nicety; never let it mask the error
        return e.expected


def _end_of_file(accepts, expected: str) -> str:
    for closer, name in (("RBRACE", "'}'"), ("RPAR", "')'"), ("RSQB", "']'")):
        if closer in accepts:
            return f"unexpected end of file — missing {name}"
    return f"unexpected end of file — expected {expected}"


def _unexpected(tok, accepts, expected: str) -> str:
    message = f"unexpected '{tok}'"
    if tok.type in _COMPARISONS and not _COMPARISONS & set(accepts):
        message += " — comparisons do not chain: use 'and' or parentheses"
    elif expected:
        message += f" — expected {expected}"
    if "NAME" in accepts and _IDENT_RE.match(str(tok)):
        message += f" ('{tok}' is a keyword)"
    return message


def _bad_character(source: str, pos: int) -> str:
    ch = source[pos] if 0 <= pos < len(source) else ""
    rest_of_line = source[pos:].split("\n", 1)[0]
    if ch == '"':
        return "unterminated string"
    if ch == "'":
        if re.match(r"'(\\.|[^'\\])*'", rest_of_line):
            return "invalid character literal"
        return "unterminated character literal"
    if ch == "@":
        return "expected a builtin name after '@'"
    shown = ch if ch.isprintable() and not ch.isspace() else repr(ch)[1:-1]
    return f"unexpected character '{shown}'"
