"""wsejax: run Cerebras Wafer-Scale Engine programs on an emulated fabric in JAX.

The public surface: `dsl` (write PE programs and layouts in Python), `SdkRuntime` with
`MemcpyDataType` / `MemcpyOrder` (drive the device from a host script, as the SDK does),
`save_program` / `load_program` (compile output directories), and the error classes.

The runtime (and with it JAX) loads when `SdkRuntime` or `Task` is first used, so that compiling
(`wsejax cslc`, `wsejax.csl`) does not start JAX.
"""

from wsejax import dsl
from wsejax.artifacts import load_program, save_program
from wsejax.errors import (
    CheckError,
    CslError,
    DeadlockError,
    FabricFault,
    LayoutError,
    MemcpyError,
    ProgramError,
    WsejaxError,
)
from wsejax.memcpy import MemcpyDataType, MemcpyOrder

__version__ = "0.1.0"

__all__ = [
    "CheckError",
    "CslError",
    "DeadlockError",
    "FabricFault",
    "LayoutError",
    "MemcpyDataType",
    "MemcpyError",
    "MemcpyOrder",
    "ProgramError",
    "SdkRuntime",
    "Task",
    "WsejaxError",
    "dsl",
    "load_program",
    "save_program",
]


def __getattr__(name: str):
    if name in ("SdkRuntime", "Task"):
        from wsejax import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'wsejax' has no attribute {name!r}")
