"""The `wsejax` command: the SDK's `cslc` and `cs_python`, on the emulated fabric.

    wsejax cslc layout.csl --fabric-dims=8,3 --fabric-offsets=4,1 \\
        --params=width:1,height:1,M:4,N:6 --memcpy --channels=1 -o out
    wsejax python run.py --name out
    wsejax --version

`cslc` takes the flags of the SDK's compiler (spec 14.1), compiles with `wsejax.csl.compile_csl`
and writes the output directory with `save_program`. `python` runs a host script as `cs_python`
does, with `cerebras.sdk.runtime.sdkruntimepybind` and `cerebras.sdk.sdk_utils` served by
`wsejax.compat` for the duration of the script.

Exit status: 0 on success; 1 when the input is wrong (a `WsejaxError`: `error: <message>`, no
traceback unless `--debug`) or the script failed; 2 for a malformed command line. Any other
exception raised inside wsejax is a bug: it is reported on one line, `internal error: <type>:
<message>`, with exit status 1, and its traceback is shown only with `--debug` (or the
environment variable WSEJAX_DEBUG=1). An exception of the host script's own (not raised inside
wsejax) shows its traceback, as `python` would.
"""

from __future__ import annotations

import dataclasses
import os
import re
import runpy
import sys
import time
import traceback

import wsejax
from wsejax.errors import WsejaxError

__all__ = ["CslcOptions", "UsageError", "main", "parse_cslc", "run_script"]

HELP = """\
usage: wsejax [--version] [--debug] COMMAND [ARGS...]

Run Cerebras WSE programs (CSL + SdkRuntime host scripts) on an emulated fabric in JAX.

commands:
  cslc TOP.csl [FLAGS]          compile a CSL layout into an output directory (the SDK's cslc)
  python SCRIPT.py [ARGS...]    run a host script (the SDK's cs_python)

options:
  --version   print the version and exit
  --debug     show Python tracebacks for wsejax errors (also WSEJAX_DEBUG=1)
  -h, --help  print this help and exit

`wsejax COMMAND --help` describes a command."""

CSLC_HELP = """\
usage: wsejax cslc TOP.csl [-o DIR] [--arch=wse2|wse3] [--fabric-dims=W,H]
                   [--fabric-offsets=X,Y] [--params NAME:VALUE[,NAME:VALUE...]]...
                   [--colors NAME:VALUE[,NAME:VALUE...]]... [--memcpy] [--channels N]
                   [--import-path DIR]... [--width-west-buf N] [--width-east-buf N]
                   [--fp16-format=f16|cb16|bf16] [--timings] [--debug]

Compile the layout file TOP.csl into DIR, which `SdkRuntime(DIR)` runs. Every flag takes its
value as `--flag=VALUE` or `--flag VALUE` (and `-oDIR`).

flags:
  -o DIR                   output directory (default: out)
  --arch=wse2|wse3         target architecture (default: wse2)
  --fabric-dims=W,H        fabric size in PEs
  --fabric-offsets=X,Y     fabric position of the program rectangle's PE (0, 0)
  --params NAME:VALUE,...  values of top-level params (unsigned integers); repeatable
  --colors NAME:VALUE,...  values of top-level colors; repeatable
  --memcpy                 add the memcpy infrastructure (host transfers and launches)
  --channels N             memcpy I/O channels, 1 to 16 (default: 1)
  --import-path DIR        also look for imported modules in DIR; repeatable (then the
                           colon-separated directories of $CSL_IMPORT_PATH)
  --width-west-buf N       columns of memcpy buffer PEs west of the rectangle (default: 0)
  --width-east-buf N       columns of memcpy buffer PEs east of the rectangle (default: 0)
  --fp16-format=FMT        16-bit float format: f16, cb16 or bf16 (default: f16)
  --timings                print the seconds each phase of the build took on stderr
                           (parse, layout, tile_classes, routes, write)
  --debug                  show Python tracebacks for errors
  -h, --help               print this help and exit

A build of many PEs shows its progress on stderr where stderr is a terminal.

accepted and ignored (one warning each): --output-json[=PATH], --out-routes,
  --max-inlined-iterations N, --comptime-func-depth-limit N, --max-parallelism N, -g0,
  --warnings-as-errors, --verbose, --link-section-start-address-bytes=SPEC"""

PYTHON_HELP = """\
usage: wsejax python [--debug] SCRIPT.py [ARGS...]

Run a host script as the SDK's cs_python does: sys.argv = [SCRIPT.py, ARGS...], the script's
directory first on sys.path, and `cerebras.sdk.runtime.sdkruntimepybind`,
`cerebras.sdk.sdk_utils` and `cerebras.sdk.debug.debug_util` served by wsejax while it runs.

options:
  --debug     show the traceback of a wsejax error or internal error raised in the script
              (also WSEJAX_DEBUG=1)
  -h, --help  print this help and exit"""


class UsageError(Exception):
    """A malformed command line (exit status 2)."""


# -- cslc ----------------------------------------------------------------------------------------

_SWITCHES = {"--memcpy", "--debug", "--timings", "-h", "--help", "--out-routes", "-g0",
             "--warnings-as-errors", "--verbose"}
_OPTIONAL_VALUE = {"--output-json"}
_IGNORED = ("--output-json", "--out-routes", "--max-inlined-iterations",
            "--comptime-func-depth-limit", "--max-parallelism", "-g0", "--warnings-as-errors",
            "--verbose", "--link-section-start-address-bytes")

_UINT = re.compile(r"[0-9]+\Z")
_NAME_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):([0-9]+)\Z")


def _uint(flag: str, value: str, lo: int = 0, hi: int | None = None) -> int:
    if _UINT.match(value) and int(value) >= lo and (hi is None or int(value) <= hi):
        return int(value)
    want = (f"an integer from {lo} to {hi}" if hi is not None else
            "an unsigned integer" if lo == 0 else f"an integer >= {lo}")
    raise UsageError(f"{flag} expects {want}, got {value!r}")


def _pair(flag: str, value: str, names: str, lo: int) -> tuple[int, int]:
    parts = value.split(",")
    if len(parts) == 2 and all(_UINT.match(p) and int(p) >= lo for p in parts):
        return int(parts[0]), int(parts[1])
    kind = "positive" if lo else "non-negative"
    raise UsageError(f"{flag} expects {names} (two {kind} integers), got {value!r}")


def _choice(flag: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(f"{flag} expects one of {', '.join(choices)}, got {value!r}")
    return value


def _name_values(flag: str, value: str, into: dict[str, int]) -> None:
    for item in value.split(","):
        m = _NAME_VALUE.match(item)
        if m is None:
            raise UsageError(f"{flag} expects NAME:VALUE[,NAME:VALUE...] with unsigned integer "
                         f"values, got {item!r}")
        name, v = m.group(1), int(m.group(2))
        if name in into:
            raise UsageError(f"{flag} gives '{name}' twice ({into[name]} and {v})")
        into[name] = v


@dataclasses.dataclass
class CslcOptions:
    """The parsed `wsejax cslc` command line."""

    top: str = ""
    out: str = "out"
    arch: str = "wse2"
    fabric_dims: tuple[int, int] | None = None
    fabric_offsets: tuple[int, int] | None = None
    params: dict[str, int] = dataclasses.field(default_factory=dict)
    colors: dict[str, int] = dataclasses.field(default_factory=dict)
    memcpy: bool = False
    channels: int = 1
    import_paths: list[str] = dataclasses.field(default_factory=list)
    width_west_buf: int = 0
    width_east_buf: int = 0
    fp16_format: str = "f16"
    debug: bool = False
    timings: bool = False
    help: bool = False
    ignored: list[str] = dataclasses.field(default_factory=list)   # flags to warn about, once

    def compile_kwargs(self) -> dict:
        """The keyword arguments of `compile_csl`."""
        return dict(params=dict(self.params), colors=dict(self.colors), arch=self.arch,
                    fabric_dims=self.fabric_dims, fabric_offsets=self.fabric_offsets,
                    channels=self.channels, memcpy=self.memcpy,
                    import_paths=tuple(self.import_paths), width_west_buf=self.width_west_buf,
                    width_east_buf=self.width_east_buf, fp16_format=self.fp16_format)


def _set(field: str, parse=None):
    """A flag that stores its parsed value in one field of CslcOptions."""
    def apply(opts: CslcOptions, flag: str, value: str | None) -> None:
        setattr(opts, field, True if parse is None else parse(flag, value))
    return apply


def _ignore(opts: CslcOptions, flag: str, value: str | None) -> None:
    if flag in _IGNORED_UINT:
        _uint(flag, value)
    if flag not in opts.ignored:
        opts.ignored.append(flag)


_IGNORED_UINT = ("--max-inlined-iterations", "--comptime-func-depth-limit", "--max-parallelism")

# flag -> how it changes the options
_FLAGS = {
    "-o": _set("out", lambda flag, value: value),
    "--arch": _set("arch", lambda flag, value: _choice(flag, value, ("wse2", "wse3"))),
    "--fabric-dims": _set("fabric_dims", lambda flag, value: _pair(flag, value, "W,H", 1)),
    "--fabric-offsets": _set("fabric_offsets", lambda flag, value: _pair(flag, value, "X,Y", 0)),
    "--params": lambda opts, flag, value: _name_values(flag, value, opts.params),
    "--colors": lambda opts, flag, value: _name_values(flag, value, opts.colors),
    "--memcpy": _set("memcpy"),
    "--channels": _set("channels", lambda flag, value: _uint(flag, value, 1, 16)),
    "--import-path": lambda opts, flag, value: opts.import_paths.append(value),
    "--width-west-buf": _set("width_west_buf", _uint),
    "--width-east-buf": _set("width_east_buf", _uint),
    "--fp16-format": _set("fp16_format",
                          lambda flag, value: _choice(flag, value, ("f16", "cb16", "bf16"))),
    "--debug": _set("debug"),
    "--timings": _set("timings"),
    "-h": _set("help"),
    "--help": _set("help"),
    **{flag: _ignore for flag in _IGNORED},
}


def _apply(opts: CslcOptions, flag: str, value: str | None) -> None:
    """Record one flag (its value already split off) in `opts`."""
    if flag not in _FLAGS:
        raise UsageError(f"unknown flag {flag}")
    _FLAGS[flag](opts, flag, value)


_TAKES_VALUE = {"-o", "--arch", "--fabric-dims", "--fabric-offsets", "--params", "--colors",
                "--channels", "--import-path", "--width-west-buf", "--width-east-buf",
                "--fp16-format", "--max-inlined-iterations", "--comptime-func-depth-limit",
                "--max-parallelism", "--link-section-start-address-bytes"}


def _flag_value(tok: str, args: list[str]) -> tuple[str, str | None]:
    """Split one flag token into (flag, value), taking the value from `args` if it is separate."""
    if tok.startswith("-o") and not tok.startswith("--"):       # -o DIR, -o=DIR, -oDIR
        flag, value = "-o", tok[2:].removeprefix("=") if tok != "-o" else None
    elif tok.startswith("--") and "=" in tok:
        flag, _, value = tok.partition("=")
    else:
        flag, value = tok, None
    if flag in _TAKES_VALUE:
        if value is None:
            if not args or (args[0].startswith("-") and args[0] != "-"):
                raise UsageError(f"{flag} expects a value")
            value = args.pop(0)
        if value == "":
            raise UsageError(f"{flag} expects a value, got ''")
    elif flag in _SWITCHES:
        if value is not None:
            raise UsageError(f"{flag} takes no value, got {tok!r}")
    elif flag not in _OPTIONAL_VALUE:
        raise UsageError(f"unknown flag {flag} (see `wsejax cslc --help`)")
    return flag, value


def parse_cslc(argv: list[str], env: dict[str, str] | None = None) -> CslcOptions:
    """Parse `wsejax cslc` arguments. `env` supplies CSL_IMPORT_PATH (default: os.environ).

    Raises:
      UsageError: a flag is unknown or its value malformed; the message names the flag.
    """
    opts = CslcOptions()
    tops: list[str] = []
    args = list(argv)
    while args:
        tok = args.pop(0)
        if tok == "--":
            tops.extend(args)
            break
        if not tok.startswith("-") or tok == "-":
            tops.append(tok)
            continue
        flag, value = _flag_value(tok, args)
        _apply(opts, flag, value)
        if opts.help:
            return opts
    if not tops:
        raise UsageError("expected the layout file TOP.csl")
    if len(tops) > 1:
        raise UsageError(f"expected one layout file, got {len(tops)}: {' '.join(tops)}")
    opts.top = tops[0]
    env = os.environ if env is None else env
    opts.import_paths += [d for d in env.get("CSL_IMPORT_PATH", "").split(":") if d]
    return opts


def _debug_env() -> bool:
    return os.environ.get("WSEJAX_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def _internal(command: str, e: BaseException, where: str = "") -> None:
    """Report an exception wsejax did not mean to raise, on one line."""
    lines = str(e).strip().splitlines()
    message = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    if len(lines) > 1:
        message += " ..."
    where = f"called from {where}; " if where else ""
    print(f"wsejax {command}: internal error: {message} ({where}this is a bug in wsejax, please "
          "report it; rerun with --debug or WSEJAX_DEBUG=1 for the traceback)", file=sys.stderr)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e)


def _build(compile_csl, opts: CslcOptions) -> None:
    """Compile and write the output directory; with --timings, print each phase's time."""
    timings: dict = {}
    program = compile_csl(opts.top, **opts.compile_kwargs(), timings=timings)
    start = time.perf_counter()
    wsejax.save_program(program, opts.out, params=opts.params, colors=opts.colors)
    timings["write"] = time.perf_counter() - start
    if opts.timings:
        _print_timings(timings)


def _print_timings(timings: dict) -> None:
    """`wsejax cslc: parse 0.01 s, layout 1.20 s, ..., total 3.40 s` on stderr."""
    parts = [f"{phase} {t:.2f} s" for phase, t in timings.items()]
    parts.append(f"total {sum(timings.values()):.2f} s")
    print("wsejax cslc: " + ", ".join(parts), file=sys.stderr)


def _cslc(argv: list[str], debug: bool) -> int:
    try:
        opts = parse_cslc(argv)
    except UsageError as e:
        print(f"wsejax cslc: error: {e}", file=sys.stderr)
        return 2
    if opts.help:
        print(CSLC_HELP)
        return 0
    debug = debug or opts.debug
    for flag in opts.ignored:
        print(f"wsejax cslc: warning: {flag} is accepted and ignored", file=sys.stderr)
    try:
        with open(opts.top, "rb"):
            pass
        try:
            from wsejax.csl import compile_csl
        except ImportError as e:
            if debug:
                raise
            print(f"wsejax cslc: error: the CSL front end (wsejax.csl) cannot be loaded: {e}",
                  file=sys.stderr)
            return 1
        _build(compile_csl, opts)
    except (WsejaxError, OSError) as e:
        if debug:
            traceback.print_exc()
        else:
            print(f"wsejax cslc: error: {_describe(e)}", file=sys.stderr)
        return 1
    except Exception as e:
        if debug:
            traceback.print_exc()
        else:
            _internal("cslc", e)
        return 1
    return 0


# -- python --------------------------------------------------------------------------------------

def _exit_status(e: SystemExit) -> int:
    """The status Python itself would exit with for `e`."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


_PACKAGE = os.path.dirname(os.path.abspath(wsejax.__file__)) + os.sep


def _wsejax_caller(e: BaseException, script: str) -> str | None:
    """Where the script called into wsejax (`file:line`) if `e` was raised inside wsejax,
    else None (the script's own exception, or one from a library it called itself)."""
    caller = None
    inside = False
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if os.path.abspath(name).startswith(_PACKAGE):
            inside = True
        elif not inside:
            caller = f"{os.path.basename(name)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return caller if inside else None


def _missing_out_json(e: BaseException) -> bool:
    return (isinstance(e, FileNotFoundError) and isinstance(e.filename, str)
            and os.path.basename(e.filename) == "out.json")


def _print_script_traceback(e: BaseException, script: str) -> None:
    """The traceback as `python SCRIPT` shows it: from the script's first frame on."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    traceback.print_exception(type(e), e, tb, file=sys.stderr)


def run_script(script: str, args: list[str], debug: bool = False) -> int:
    """Run the host script `script` with `args` as `cs_python` would; return the exit status."""
    from wsejax.compat import cerebras_shims

    path = os.path.abspath(script)
    saved_argv, saved_path = sys.argv, sys.path[:]
    sys.argv = [script, *args]
    sys.path[:1] = [os.path.dirname(path)]
    try:
        with cerebras_shims():
            runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        return _exit_status(e)
    except WsejaxError as e:
        if debug:
            _print_script_traceback(e, path)
        else:
            print(f"wsejax python: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if debug:
            _print_script_traceback(e, path)
        elif _missing_out_json(e):
            # the SDK's host scripts open `{args.name}/out.json` before SdkRuntime: say what
            # that directory should be rather than show the script's traceback
            print(f"wsejax python: error: {script} cannot open '{e.filename}': {e.strerror} "
                  "(the script expects a compile output directory: `wsejax cslc ... -o DIR`, "
                  "then `--name DIR`)", file=sys.stderr)
        elif (caller := None if isinstance(e, OSError) else _wsejax_caller(e, path)) is None:
            _print_script_traceback(e, path)
        else:
            _internal("python", e, caller)
        return 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
    return 0


def _python(argv: list[str], debug: bool) -> int:
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-h", "--help"):
            print(PYTHON_HELP)
            return 0
        if opt == "--debug":
            debug = True
        elif opt == "--":
            break
        else:
            print(f"wsejax python: error: unknown option {opt} (options go before the script: "
                  "--debug, --help)", file=sys.stderr)
            return 2
    if not args:
        print("wsejax python: error: expected a script to run: wsejax python SCRIPT.py [ARGS...]",
              file=sys.stderr)
        return 2
    script, rest = args[0], args[1:]
    if not os.path.isfile(script):
        print(f"wsejax python: error: cannot open script '{script}': no such file",
              file=sys.stderr)
        return 2
    return run_script(script, rest, debug)


# -- wsejax --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Run the `wsejax` command with `argv` (default: sys.argv[1:]); return the exit status."""
    args = sys.argv[1:] if argv is None else [os.fspath(a) for a in argv]
    debug = _debug_env()
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-h", "--help"):
            print(HELP)
            return 0
        if opt == "--version":
            print(f"wsejax {wsejax.__version__}")
            return 0
        if opt != "--debug":
            print(f"wsejax: error: unknown option {opt} (see `wsejax --help`)", file=sys.stderr)
            return 2
        debug = True
    if not args:
        print(HELP)
        return 0
    command, rest = args[0], args[1:]
    if command in ("cslc", "python"):
        try:
            return _cslc(rest, debug) if command == "cslc" else _python(rest, debug)
        except Exception as e:      # the last line of defence: no traceback unless asked
            if debug:
                raise
            _internal(command, e)
            return 1
    print(f"wsejax: error: unknown command '{command}' (commands: cslc, python)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
