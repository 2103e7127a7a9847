"""The SDK's host-side modules, served under their `cerebras.*` names while a host script runs.

`wsejax python run.py ...` (the SDK's `cs_python`) wraps the script in `cerebras_shims()`, so

    from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime, MemcpyDataType, MemcpyOrder
    from cerebras.sdk.sdk_utils import memcpy_view

import wsejax's emulation (`wsejax.compat.sdkruntimepybind`, `wsejax.compat.sdk_utils`). The
names exist only inside the context: no `cerebras` package is installed, and leaving the context
removes every `cerebras*` module again (restoring any that were there before), so nothing else
in the process can mistake the emulator for the real SDK.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

__all__ = ["SHIMS", "cerebras_shims"]

# SDK module name -> the wsejax module that stands in for it (None: an empty package)
SHIMS: dict[str, str | None] = {
    "cerebras": None,
    "cerebras.sdk": None,
    "cerebras.sdk.runtime": None,
    "cerebras.sdk.runtime.sdkruntimepybind": "wsejax.compat.sdkruntimepybind",
    "cerebras.sdk.sdk_utils": "wsejax.compat.sdk_utils",
    "cerebras.sdk.debug": None,
    "cerebras.sdk.debug.debug_util": "wsejax.compat.debug_util",
    "cerebras.geometry": None,
    "cerebras.geometry.geometry": "wsejax.sdklayout.geometry",
}


def _is_cerebras(name: str) -> bool:
    return name == "cerebras" or name.startswith("cerebras.")


class _Unserved(importlib.abc.MetaPathFinder):
    """Says plainly that a `cerebras.*` module the emulator does not provide is missing."""

    def find_spec(self, fullname, path=None, target=None):
        if _is_cerebras(fullname) and fullname not in SHIMS:
            served = ", ".join(name for name, mod in SHIMS.items() if mod is not None)
            raise ModuleNotFoundError(f"No module named '{fullname}': wsejax emulates only "
                                      f"{served}", name=fullname)
        return None


def _package(name: str) -> types.ModuleType:
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    module = importlib.util.module_from_spec(spec)
    module.__doc__ = f"`{name}` as served by wsejax (an emulator of the Cerebras SDK)."
    return module


@contextlib.contextmanager
def cerebras_shims():
    """Make the `cerebras.*` names in `SHIMS` importable for the duration of the block."""
    saved = {k: v for k, v in sys.modules.items() if _is_cerebras(k)}
    finder = _Unserved()
    for name, target in SHIMS.items():
        module = _package(name) if target is None else importlib.import_module(target)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
        for name in [k for k in sys.modules if _is_cerebras(k)]:
            del sys.modules[name]
        sys.modules.update(saved)
