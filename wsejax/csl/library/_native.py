"""What every native library module is made of: `NativeModule`, its functions, and their
arguments."""

from __future__ import annotations

from wsejax.csl.values import NativeFn

__all__ = ["NativeModule", "call_args", "native_fn"]


class NativeModule:
    """A library module: members are values or NativeFn. Names in `unsupported` are members
    of the SDK's module that wsejax does not provide (reported as such); `why` gives the
    reason for some of them."""

    def __init__(self, name: str, members: dict, unsupported=(), why=None):
        self.name = name
        self.members = members
        self.why = dict(why or {})
        self.unsupported = frozenset(unsupported) | frozenset(self.why)

    def has(self, name: str) -> bool:
        return name in self.members

    def member(self, name: str, c, pos):
        if name not in self.members:
            if name in self.unsupported:
                reason = f": {self.why[name]}" if name in self.why else ""
                raise c.error(f"{self.name.replace('/', '.')}.{name} (of <"
                              f"{self.name.split('/')[0]}>) is not supported yet{reason}", pos)
            raise c.error(f"module <{self.name}> has no member '{name}' (wsejax provides: "
                          f"{', '.join(sorted(self.members))})", pos)
        return self.members[name]


def native_fn(name, impl, arity=None):
    return NativeFn(name, impl, arity)


def call_args(c, node, env, n):
    if len(node.args) not in (n if isinstance(n, tuple) else (n,)):
        raise c.error(f"{getattr(node.fn, 'name', 'function')} takes {n} argument(s), got "
                      f"{len(node.args)}", node.pos)
    return [c.ev(a, env) for a in node.args]
