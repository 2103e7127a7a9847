"""Tests for `wsejax.csl.parser`: the seed programs, every construct, precedence, positions,
error messages, and a fuzz test that malformed input only ever raises CslError.

AST nodes compare without their positions (`pos` has compare=False), so expected trees are
written without positions; positions are asserted separately.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax.csl import ast
from wsejax.csl import parser as csl_parser
from wsejax.csl.ast import (
    ArrayLit,
    ArrayType,
    Assign,
    Binary,
    Block,
    BoolLit,
    Break,
    Builtin,
    Call,
    ComptimeBlock,
    ComptimeExpr,
    Continue,
    Deref,
    EnumLit,
    EnumType,
    ExprStmt,
    Field,
    FloatLit,
    FnDecl,
    FnParam,
    FnType,
    For,
    Ident,
    If,
    IfExpr,
    Index,
    IntLit,
    LayoutBlock,
    ParamDecl,
    Pos,
    PtrType,
    Return,
    StringLit,
    StructLit,
    StructType,
    SwitchExpr,
    SwitchProng,
    TaskDecl,
    TensorAccess,
    TupleLit,
    Unary,
    UndefinedLit,
    VarDecl,
    While,
)
from wsejax.csl.parser import parse, parse_file
from wsejax.errors import CslError

SHARED = Path(__file__).parents[2] / "shared"
SEED = SHARED / "seeds" / "gemv-03-memcpy.md"


def _seed_sources() -> tuple[str, str] | None:
    if not SEED.is_file():
        return None
    blocks = re.findall(r"```csl[^\n]*\n(.*?)```", SEED.read_text(encoding="utf-8"), re.S)
    return blocks[0], blocks[1]


SEEDS = _seed_sources()


@pytest.fixture
def seeds() -> tuple[str, str]:
    if SEEDS is None:
        pytest.skip(f"seed programs not found under {SHARED}")
    return SEEDS


def I(name: str) -> Ident:  # noqa: E743 - short on purpose: expected trees stay readable
    return Ident(name)


def N(value: int) -> IntLit:
    return IntLit(value)


def expr(src: str):
    """Parse `src` as the initializer of a global."""
    return parse(f"const v = {src};").decls[0].value


def stmts(src: str) -> tuple:
    """Parse `src` as the body of a function."""
    return parse(f"fn f() void {{\n{src}\n}}").decls[0].body.stmts


def sx(e) -> str:
    """An s-expression of an operator tree: `a + b * c` -> `(+ a (* b c))`."""
    match e:
        case Ident(name):
            return name
        case IntLit(value):
            return str(value)
        case Binary(op, a, b):
            return f"({op} {sx(a)} {sx(b)})"
        case Unary(op, a):
            return f"({op} {sx(a)})"
        case Field(obj, name):
            return f"(. {sx(obj)} {name})"
        case Index(obj, indices):
            return f"([] {sx(obj)} {' '.join(sx(i) for i in indices)})"
        case Call(fn, args):
            return f"(call {sx(fn)}{''.join(' ' + sx(a) for a in args)})"
        case Deref(obj):
            return f"(.* {sx(obj)})"
    raise AssertionError(f"no s-expression for {e!r}")


# ------------------------------------------------------------------------------------------------
# The seed programs (GEMV tutorial 3)


def test_seed_layout(seeds):
    f = parse(seeds[0], "layout.csl")
    memcpy, layout = f.decls
    assert memcpy == VarDecl("memcpy", True, None, Builtin("import_module", (
        StringLit("<memcpy/get_params>"), StructLit(None, (("width", N(1)), ("height", N(1)))))))
    assert isinstance(layout, LayoutBlock)
    body = layout.body.stmts
    assert [s.expr.name for s in body] == [
        "set_rectangle", "set_tile_code", "export_name", "export_name", "export_name",
        "export_name", "export_name"]
    assert body[1] == ExprStmt(Builtin("set_tile_code", (
        N(0), N(0), StringLit("pe_program.csl"),
        StructLit(None, (("memcpy_params", Call(Field(I("memcpy"), "get_params"), (N(0),))),)))))
    assert body[2].expr.args == (StringLit("A"), PtrType("many", False, I("f32")), BoolLit(True))
    assert body[6].expr.args == (StringLit("init_and_compute"), FnType((), I("void")))
    assert layout.pos == Pos("layout.csl", 3, 1)
    assert body[0].pos == Pos("layout.csl", 4, 3)


def test_seed_pe_program(seeds):
    f = parse(seeds[1], "pe_program.csl")
    by_name = {d.name: d for d in f.decls if hasattr(d, "name")}
    assert f.decls[0] == ParamDecl("memcpy_params", None, None)
    assert by_name["M"] == VarDecl("M", True, I("i16"), N(4))
    assert by_name["A"] == VarDecl("A", False, ArrayType((Binary("*", I("M"), I("N")),), I("f32")),
                                   None)
    assert by_name["y"].value == Builtin("zeros", (ArrayType((I("M"),), I("f32")),))

    a_dsd = by_name["A_dsd"]
    assert a_dsd.pos == Pos("pe_program.csl", 19, 1)
    kind, props = a_dsd.value.args
    assert kind == I("mem1d_dsd")
    [(field_name, access)] = props.fields
    assert field_name == "tensor_access"
    assert access == TensorAccess(("i",), (I("M"),), Index(I("A"), (Binary("*", I("i"), I("N")),)))
    assert access.pos == Pos("pe_program.csl", 19, 53)
    assert by_name["b_dsd"].value.args[1] == StructLit(
        None, (("base_address", Unary("&", I("b"))), ("extent", I("M"))))
    assert by_name["y_ptr"] == VarDecl("y_ptr", True, PtrType("many", False, I("f32")),
                                       Unary("&", I("y")))

    gemv = by_name["gemv"]
    assert isinstance(gemv, FnDecl) and gemv.params == () and gemv.ret == I("void")
    loop, fadds = gemv.body.stmts
    assert isinstance(loop, For) and loop.capture == "i" and loop.index is None
    assert loop.iterable == Builtin("range", (I("i16"), I("N")))
    assert loop.body.stmts[1] == Assign(
        I("A_dsd"), "=", Builtin("increment_dsd_offset", (I("A_dsd"), N(1), I("f32"))))
    assert fadds == ExprStmt(Builtin("fadds", (I("y_dsd"), I("y_dsd"), I("b_dsd"))))

    comptime = f.decls[-1]
    assert isinstance(comptime, ComptimeBlock)
    assert [s.expr.args for s in comptime.body.stmts][-1] == (I("init_and_compute"),)
    assert len(comptime.body.stmts) == 5


def test_parse_file_and_cached_parser(tmp_path):
    path = tmp_path / "k.csl"
    path.write_text("param n: u16;\n")
    f = parse_file(path)
    assert f.path == str(path) and f.source == "param n: u16;\n"
    assert f.decls[0].pos == Pos(str(path), 1, 1)
    assert csl_parser._parser() is csl_parser._parser()
    assert parse("").decls == ()


# ------------------------------------------------------------------------------------------------
# Precedence


@pytest.mark.parametrize("src, tree", [
    ("a + b * c", "(+ a (* b c))"),
    ("a * b + c", "(+ (* a b) c)"),
    ("a - b - c", "(- (- a b) c)"),
    ("a or b and c", "(or a (and b c))"),
    ("a and b or c", "(or (and a b) c)"),
    ("a == b and c < d", "(and (== a b) (< c d))"),
    ("a | b ^ c & d", "(| a (^ b (& c d)))"),
    ("a & b == c", "(== (& a b) c)"),
    ("a << 1 + b", "(<< a (+ 1 b))"),
    ("a ++ b * c", "(++ a (* b c))"),
    ("x % y / z", "(/ (% x y) z)"),
    ("-a.b[i]", "(- ([] (. a b) i))"),
    ("&x", "(& x)"),
    ("!~a", "(! (~ a))"),
    ("-a * b", "(* (- a) b)"),
    ("p.*", "(.* p)"),
    ("p.*.x", "(. (.* p) x)"),
    ("a & &b", "(& a (& b))"),
    ("f(a)(b)[0].c", "(. ([] (call (call f a) b) 0) c)"),
    ("m[i, j + 1]", "([] m i (+ j 1))"),
    ("(a + b) * c", "(* (+ a b) c)"),
    ("a * *b", None),  # `*b` is a pointer type in operand position
])
def test_precedence(src, tree):
    e = expr(src)
    if tree is None:
        assert e == Binary("*", I("a"), PtrType("single", False, I("b")))
    else:
        assert sx(e) == tree


def test_comparisons_do_not_chain():
    with pytest.raises(CslError, match="comparisons do not chain") as info:
        parse("const x = a < b < c;")
    assert (info.value.line, info.value.col) == (1, 17)


# ------------------------------------------------------------------------------------------------
# Top-level declarations


def test_params():
    a, b, c = parse("param a;\nparam b: i16;\nparam c: u16 = 3;").decls
    assert a == ParamDecl("a", None, None) and a.pos == Pos("<csl>", 1, 1)
    assert b == ParamDecl("b", I("i16"), None)
    assert c == ParamDecl("c", I("u16"), N(3)) and c.pos == Pos("<csl>", 3, 1)


def test_var_decls_with_modifiers():
    src = """export var buf: [4]f32 align(16) linksection(".data") = @zeros([4]f32);
extern const ext: i32;
comptime var cv = 0;
var plain: i16 linksection("x");
"""
    buf, ext, cv, plain = parse(src).decls
    assert buf == VarDecl("buf", False, ArrayType((N(4),), I("f32")),
                          Builtin("zeros", (ArrayType((N(4),), I("f32")),)), export=True,
                          align=N(16), attrs=("align", "linksection"))
    assert ext == VarDecl("ext", True, I("i32"), None, extern=True)
    assert cv == VarDecl("cv", False, None, N(0), comptime=True)
    assert plain == VarDecl("plain", False, I("i16"), None, attrs=("linksection",))


def test_functions_and_tasks():
    src = """inline fn add(comptime T: type, a: T, b: anytype) T { return a + b; }
export fn g() void {}
extern fn h(a: i32,) i32;
task t(w: u32) void { }
"""
    add, g, h, t = parse(src).decls
    assert add == FnDecl("add", (FnParam("T", I("type"), comptime=True), FnParam("a", I("T")),
                                 FnParam("b", I("anytype"))),
                         I("T"), Block((Return(Binary("+", I("a"), I("b"))),)), inline=True)
    assert add.params[1].pos == Pos("<csl>", 1, 33)
    assert g == FnDecl("g", (), I("void"), Block(()), export=True)
    assert h == FnDecl("h", (FnParam("a", I("i32")),), I("i32"), None, extern=True)
    assert t == TaskDecl("t", (FnParam("w", I("u32")),), Block(()))
    assert t.pos == Pos("<csl>", 4, 1) and t.body.pos == Pos("<csl>", 4, 21)


def test_comptime_and_layout_blocks():
    c, lay = parse("comptime { @f(); }\nlayout { @set_rectangle(2, 1); }").decls
    assert c == ComptimeBlock(Block((ExprStmt(Builtin("f", ())),)))
    assert lay == LayoutBlock(Block((ExprStmt(Builtin("set_rectangle", (N(2), N(1)))),)))
    assert lay.pos == Pos("<csl>", 2, 1)


# ------------------------------------------------------------------------------------------------
# Statements


def test_locals_and_assignments():
    ops = ["=", "+=", "-=", "*=", "/=", "%=", "<<=", ">>=", "&=", "|=", "^="]
    body = stmts("var i: i16 = 0;\nconst j = 1;\n" + "\n".join(f"i {op} 2;" for op in ops))
    assert body[0] == VarDecl("i", False, I("i16"), N(0))
    assert body[1] == VarDecl("j", True, None, N(1))
    assert body[2:] == tuple(Assign(I("i"), op, N(2)) for op in ops)
    assert body[2].pos == Pos("<csl>", 4, 1)


def test_assignment_targets_and_expression_statements():
    body = stmts("p.* = 3;\na[i, j] = 4;\ns.x += 1;\nf(1);\n@g();")
    assert body[0] == Assign(Deref(I("p")), "=", N(3))
    assert body[1] == Assign(Index(I("a"), (I("i"), I("j"))), "=", N(4))
    assert body[2] == Assign(Field(I("s"), "x"), "+=", N(1))
    assert body[3] == ExprStmt(Call(I("f"), (N(1),)))
    assert body[4] == ExprStmt(Builtin("g", ()))


def test_if_statements():
    s1, s2, s3, s4 = stmts("""if (a) { return; }
if (a == 0) { x = 1; } else if (b) { x = 2; } else { x = 3; }
if (a) return;
if (a) x = 1 else y = 2;""")
    assert s1 == If(I("a"), Block((Return(None),)), None)
    assert s2 == If(Binary("==", I("a"), N(0)), Block((Assign(I("x"), "=", N(1)),)),
                    If(I("b"), Block((Assign(I("x"), "=", N(2)),)),
                       Block((Assign(I("x"), "=", N(3)),))))
    assert s2.orelse.pos == Pos("<csl>", 3, 29)
    assert s3 == If(I("a"), Block((Return(None),)), None)
    assert s3.then.pos == Pos("<csl>", 4, 8)  # the unbraced body is wrapped in a Block
    assert s4 == If(I("a"), Block((Assign(I("x"), "=", N(1)),)),
                    Block((Assign(I("y"), "=", N(2)),)))


def test_while_loops():
    w1, w2, w3 = stmts("""while (i < 10) : (i += 1) { continue; }
inline while (true) { break; }
while (f()) : (g()) h();""")
    assert w1 == While(Binary("<", I("i"), N(10)), Assign(I("i"), "+=", N(1)),
                       Block((Continue(None),)))
    assert w1.pos == Pos("<csl>", 2, 1)
    assert w2 == While(BoolLit(True), None, Block((Break(None, None),)), inline=True)
    assert w3 == While(Call(I("f"), ()), ExprStmt(Call(I("g"), ())),
                       Block((ExprStmt(Call(I("h"), ())),)))


def test_for_loops_and_labels():
    f1, f2, f3, outer = stmts("""for (xs) |x| { }
for (@range(i16, 4)) |x, idx| { }
inline for (xs) |x| { }
outer: for (xs) |x| { inner: while (c) { break :outer; continue :inner; } }""")
    assert f1 == For(I("xs"), "x", None, Block(()))
    assert f2 == For(Builtin("range", (I("i16"), N(4))), "x", "idx", Block(()))
    assert f3 == For(I("xs"), "x", None, Block(()), inline=True)
    inner = While(I("c"), None, Block((Break("outer", None), Continue("inner"))), label="inner")
    assert outer == For(I("xs"), "x", None, Block((inner,)), label="outer")
    assert outer.pos == Pos("<csl>", 5, 1)


def test_blocks_returns_breaks():
    body = stmts("""{ x = 1; }
lbl: { break :lbl; }
comptime { cv += 1; }
comptime f(3);
return;
return x + 1;
break :blk 5;
break;""")
    assert body[0] == Block((Assign(I("x"), "=", N(1)),))
    assert body[1] == Block((Break("lbl", None),), label="lbl")
    assert body[2] == Block((Assign(I("cv"), "+=", N(1)),), comptime=True)
    assert body[2].pos == Pos("<csl>", 4, 1)
    assert body[3] == ExprStmt(ComptimeExpr(Call(I("f"), (N(3),))))
    assert body[4:] == (Return(None), Return(Binary("+", I("x"), N(1))), Break("blk", N(5)),
                        Break(None, None))


def test_switch_statement():
    [s] = stmts("switch (i) { 0 => { foo(); }, 1, 2 => bar(), else => {} }")
    assert s == ExprStmt(SwitchExpr(I("i"), (
        SwitchProng((N(0),), Block((ExprStmt(Call(I("foo"), ())),))),
        SwitchProng((N(1), N(2)), Call(I("bar"), ())),
        SwitchProng((), Block(()))), stmt=True))
    assert s.expr.prongs[1].pos == Pos("<csl>", 2, 31)
    assert not expr("switch (i) { else => 1 }").stmt


# ------------------------------------------------------------------------------------------------
# Expressions


def test_literals():
    assert expr("1_000") == N(1000)
    assert expr("0x1F") == N(31) and expr("0o17") == N(15) and expr("0b101") == N(5)
    assert expr("123456789012345678901234567890") == N(123456789012345678901234567890)
    assert expr("'a'") == N(97) and expr(r"'\n'") == N(10) and expr(r"'\x41'") == N(65)
    assert expr("1.5") == FloatLit(1.5) and expr("1e-3") == FloatLit(0.001)
    assert expr("1.5e3") == FloatLit(1500.0) and expr("0x1p3") == FloatLit(8.0)
    assert expr(r'"a\tb\\\"c\x41\u{263A}"') == StringLit('a\tb\\"cA\u263a')
    assert expr("true") == BoolLit(True) and expr("false") == BoolLit(False)
    assert expr("undefined") == UndefinedLit()
    assert expr(".red") == EnumLit("red")


def test_builtins_and_calls():
    assert expr("@as(u16, x)") == Builtin("as", (I("u16"), I("x")))
    assert expr("@fp16()") == Builtin("fp16", ())
    assert expr("@import_module(\"<m>\").f(1, 2,)") == Call(
        Field(Builtin("import_module", (StringLit("<m>"),)), "f"), (N(1), N(2)))


def test_struct_tuple_and_array_literals():
    assert expr(".{ .a = 1, .b = 2, }") == StructLit(None, (("a", N(1)), ("b", N(2))))
    assert expr(".{ a, .b }") == TupleLit((I("a"), EnumLit("b")))
    assert expr(".{}") == TupleLit(())
    assert expr(".{ .p = .{ .high = true } }") == StructLit(
        None, (("p", StructLit(None, (("high", BoolLit(True)),))),))
    assert expr("Point{ .x = 1 }") == StructLit(I("Point"), (("x", N(1)),))
    assert expr("m.T{}") == StructLit(Field(I("m"), "T"), ())
    assert expr("[3]i16{1, 2, 3}") == ArrayLit(ArrayType((N(3),), I("i16")), (N(1), N(2), N(3)))
    assert expr("[_]u16{ 7, }") == ArrayLit(ArrayType((None,), I("u16")), (N(7),))
    assert expr("[0]f32{}") == ArrayLit(ArrayType((N(0),), I("f32")), ())


def test_types():
    assert expr("[N, M]f32") == ArrayType((I("N"), I("M")), I("f32"))
    assert expr("[*]f32") == PtrType("many", False, I("f32"))
    assert expr("[*]const f32") == PtrType("many", True, I("f32"))
    assert expr("*i16") == PtrType("single", False, I("i16"))
    assert expr("*const [4]i16") == PtrType("single", True, ArrayType((N(4),), I("i16")))
    assert expr("*const fn(i16, f32) void") == PtrType(
        "single", True, FnType((I("i16"), I("f32")), I("void")))
    assert expr("fn(a: i16) bool") == FnType((I("i16"),), I("bool"))
    assert expr("struct { a: i16, b: f32 = 1.0, }") == StructType(
        (("a", I("i16"), None), ("b", I("f32"), FloatLit(1.0))))
    assert expr("enum(u16) { red, white = 4, blue }") == EnumType(
        I("u16"), (("red", None), ("white", N(4)), ("blue", None)))
    assert expr("enum { a }") == EnumType(None, (("a", None),))


def test_top_level_expression_forms():
    assert expr("if (a) 1 else 2") == IfExpr(I("a"), N(1), N(2))
    assert expr("if (a) if (b) 1 else 2 else 3") == IfExpr(I("a"), IfExpr(I("b"), N(1), N(2)),
                                                          N(3))
    assert expr("switch (x) { 1, 2 => 3, else => 4, }") == SwitchExpr(
        I("x"), (SwitchProng((N(1), N(2)), N(3)), SwitchProng((), N(4))))
    assert expr("blk: { break :blk 5; }") == Block((Break("blk", N(5)),), label="blk")
    assert expr("comptime f(3)") == ComptimeExpr(Call(I("f"), (N(3),)))
    assert expr("@f(|i, j|{4, 3} -> A[i, j])").args[0] == TensorAccess(
        ("i", "j"), (N(4), N(3)), Index(I("A"), (I("i"), I("j"))))
    assert expr("1 + (if (a) 1 else 2)") == Binary("+", N(1), IfExpr(I("a"), N(1), N(2)))
    # the `else` may be left out; a dangling `else` belongs to the nearest `if`
    assert expr("if (a) 1 else if (b) 2") == IfExpr(I("a"), N(1), IfExpr(I("b"), N(2), None))
    assert expr("if (a) if (b) 1 else 2") == IfExpr(I("a"), IfExpr(I("b"), N(1), N(2)), None)


def test_expression_positions():
    src = "const v =\n  a + b.c;\nconst w = -x;"
    v, w = parse(src, "p.csl").decls
    plus = v.value
    assert plus.pos == Pos("p.csl", 2, 5)  # a Binary sits at its operator
    assert plus.a.pos == Pos("p.csl", 2, 3)
    assert plus.b.pos == Pos("p.csl", 2, 9)  # a Field sits at its field name
    assert plus.b.obj.pos == Pos("p.csl", 2, 7)
    assert w.value.pos == Pos("p.csl", 3, 11) and w.value.a.pos == Pos("p.csl", 3, 12)


def test_comments_are_ignored():
    f = parse("// header\nconst a = 1; // trailing\n// const b = 2;\n")
    assert f.decls == (VarDecl("a", True, None, N(1)),)


# ------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("src, line, col, message", [
    ("const x = 1\nconst y = 2;", 1, 12, "missing ';' after '1'"),
    ("layout { @set_rectangle(1, 1) }", 1, 30, "missing ';' after ')'"),
    ("fn f() void {}\nfn g() void { x = (1 + ); }", 2, 24,
     "unexpected ')' — expected an expression"),
    ("const x = 1 2;", 1, 13, "unexpected '2' — expected ';' or an operator"),
    ("const var = 3;", 1, 7, "unexpected 'var' — expected a name ('var' is a keyword)"),
    ("fn f() void {\n  x = 1;\n", 2, 9, "unexpected end of file — missing '}'"),
    ('const s = "abc;\n', 1, 11, "unterminated string"),
    ("const a = 1;\n  /* note */", 2, 3, "block comments /* */ are not CSL: use //"),
    ('fn f() void {\n  asm volatile ("nop");\n}', 2, 3, "inline assembly is not supported"),
    ("const x = 'ab';", 1, 11, "invalid character literal"),
    ("const x = 'a", 1, 11, "unterminated character literal"),
    ('const x = "a\\qb";', 1, 13, "invalid escape sequence '\\q'"),
    ("const x = #;", 1, 11, "unexpected character '#'"),
    ("const x = @;", 1, 11, "expected a builtin name after '@'"),
    ("const x = 0x1p99999;", 1, 11, "float literal out of range"),
    ("x = 1;", 1, 1, "unexpected 'x' — expected"),
])
def test_errors(src, line, col, message):
    with pytest.raises(CslError) as info:
        parse(src, "bad.csl")
    e = info.value
    assert message in e.message
    assert (e.file, e.line, e.col) == ("bad.csl", line, col)
    head, source_line, caret = str(e).split("\n")
    assert head == f"bad.csl:{line}:{col}: error: {e.message}"
    assert source_line == src.split("\n")[line - 1]
    assert caret == " " * (col - 1) + "^"


def test_deep_nesting_is_a_csl_error():
    with pytest.raises(CslError, match="nested too deeply"):
        parse("const x = " + "f(" * 3000 + ")" * 3000 + ";")


# ------------------------------------------------------------------------------------------------
# Fuzz: any mutation of valid CSL either parses or raises CslError, never anything else.

SNIPPETS = [
    "param n: u16 = 3;\nconst T = struct { a: i16, b: f32 = 1.0 };\n"
    "const E = enum(u16) { a, b = 4 };\nvar buf: [4]f32 align(16) = [4]f32{1.0, 2.0, 3, 4};\n",
    "fn f(comptime T: type, p: *const T) T {\n  var i: i16 = 0;\n"
    "  while (i < 10) : (i += 1) { if (i == 2) continue else break; }\n"
    "  outer: for (@range(i16, 4)) |x, j| { x.* += 'a'; break :outer; }\n"
    "  const v = blk: { break :blk switch (i) { 0 => 1, else => { return p.*; } }; };\n"
    "  return if (v > 0x10) -v else @as(T, 1e-3);\n}\n",
    "task t() void { @fadds(d, d, .{ .a = &x, .t = |i, j|{2, 3} -> A[i, j] }, \"s\\n\"); }\n"
    "comptime { @bind_local_task(t, @get_local_task_id(8)); }\nlayout { @set_rectangle(1, 1); }\n",
]
SPLICES = [
    "{", "}", "(", ")", "[", "]", ";", ",", ".", ".*", ".{", "@", "@f(", "\"", "'", "'a'", "\\",
    "/*", "*/", "//", "\n", "asm", "|", "|i|", "->", "=>", ":", "::", "=", "==", "<<=", "&", "*",
    "[*]", "[_]", "0x", "0x1p", "1e", "1.", "_", "const", "var", "fn", "task", "param", "if",
    "else", "while", "for", "switch", "comptime", "inline", "return", "break :", "continue",
    "struct", "enum", "layout", "and", "or", "true", "undefined", "\u00e9", "\x00", "\t",
]


@st.composite
def mutated_sources(draw) -> str:
    src = draw(st.sampled_from(SNIPPETS + list(SEEDS or ())))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(src)))
        kind = draw(st.sampled_from(["delete", "insert", "replace", "splice"]))
        if kind == "delete":
            src = src[:i] + src[i + draw(st.integers(1, 6)):]
        elif kind == "insert":
            src = src[:i] + draw(st.text(min_size=1, max_size=3)) + src[i:]
        elif kind == "replace":
            src = src[:i] + draw(st.characters()) + src[i + 1:]
        else:
            src = src[:i] + draw(st.sampled_from(SPLICES)) + src[i:]
    return src


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources())
def test_fuzz_only_csl_errors(src):
    try:
        f = parse(src, "fuzz.csl")
    except CslError as e:
        assert e.file == "fuzz.csl"
        assert 1 <= e.line <= src.count("\n") + 1 and e.col >= 1
        assert e.source_line == src.split("\n")[e.line - 1].rstrip("\r")
    else:
        assert isinstance(f, ast.File) and f.source == src
