"""wsejax: run Cerebras Wafer-Scale Engine programs on an emulated fabric in JAX.

The public surface: `dsl` (write PE programs and layouts in Python), `SdkRuntime` with
`MemcpyDataType` / `MemcpyOrder` (drive the device from a host script, as the SDK does),
`save_program` / `load_program` (compile output directories), and the error classes.
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
from wsejax.runtime import SdkRuntime, Task

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
