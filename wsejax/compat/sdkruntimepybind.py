"""`cerebras.sdk.runtime.sdkruntimepybind` as wsejax provides it (spec 13.1-13.2).

What is emulated: `SdkRuntime` runs a compile output directory (`wsejax cslc ... -o out`) on the
emulated fabric with the SDK's signatures and semantics (memcpy in copy and streaming mode,
`launch`/`call`, `Task`s, `stop`); `MemcpyDataType`, `MemcpyOrder`, `Task` are wsejax's own.
The platform classes exist so host scripts written for SDK 1.x run unchanged: every platform
is the simulator. A real system (a non-empty `cmaddr`, `get_system`) is refused with a
`MemcpyError`, since wsejax only emulates the device. `SimfabConfig` is accepted and ignored.

    platform = get_platform(None, SimfabConfig(num_threads=4), SdkTarget.WSE2)
    runner = SdkRuntime(SdkCompileArtifacts("out"), platform)
"""

from __future__ import annotations

import dataclasses
import enum
import os

from wsejax.errors import MemcpyError
from wsejax.memcpy import MemcpyDataType, MemcpyOrder
from wsejax.runtime import SdkRuntime, Task
from wsejax.sdklayout import (
    Color,
    Edge,
    Route,
    RoutingPosition,
    SdkLayout,
    get_edge_routing,
)

__all__ = [
    "Color",
    "Edge",
    "Route",
    "RoutingPosition",
    "SdkLayout",
    "get_edge_routing",
    "MemcpyDataType",
    "MemcpyOrder",
    "SdkCompileArtifacts",
    "SdkExecutionPlatform",
    "SdkRuntime",
    "SdkTarget",
    "SimfabConfig",
    "Task",
    "get_platform",
    "get_simulator",
    "get_system",
]


class SdkTarget(enum.Enum):
    """The wafer generation a platform targets."""

    WSE2 = "wse2"
    WSE3 = "wse3"


@dataclasses.dataclass
class SimfabConfig:
    """The simulator's settings in the SDK; wsejax accepts and ignores them."""

    num_threads: int = 16
    suppress_trace: bool = False
    dump_core: bool = False
    core_path: str | None = None


class SdkCompileArtifacts:
    """A compile output directory, as `SdkRuntime(artifacts, platform)` takes it."""

    def __init__(self, artifacts_path: str | os.PathLike):
        self.artifacts_path = os.fspath(artifacts_path)

    def __repr__(self) -> str:
        return f"SdkCompileArtifacts({self.artifacts_path!r})"


class SdkExecutionPlatform:
    """Where a program runs. In wsejax, always the (emulated) simulator."""

    def __init__(self, config: SimfabConfig | None = None, target: SdkTarget = SdkTarget.WSE3):
        self.config = SimfabConfig() if config is None else config
        self.target = target

    def is_simulation(self) -> bool:
        return True

    def is_system(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"SdkExecutionPlatform(simulator, target={self.target.name})"


def _refuse(what: str, cmaddr) -> MemcpyError:
    return MemcpyError(f"{what}: cmaddr={cmaddr!r} names a real CS system; wsejax only emulates "
                       "the device (leave cmaddr unset to use the emulator)")


def get_platform(cmaddr: str | None = None, config: SimfabConfig | None = None,
                 target: SdkTarget = SdkTarget.WSE3) -> SdkExecutionPlatform:
    """The simulator platform. Raises MemcpyError for a non-empty `cmaddr` (a real system)."""
    if cmaddr:
        raise _refuse("get_platform", cmaddr)
    return SdkExecutionPlatform(config, target)


def get_simulator(config: SimfabConfig | None = None,
                  target: SdkTarget = SdkTarget.WSE3) -> SdkExecutionPlatform:
    """The simulator platform."""
    return SdkExecutionPlatform(config, target)


def get_system(cmaddr: str) -> SdkExecutionPlatform:
    """A real system: always raises MemcpyError, as wsejax only emulates the device."""
    raise _refuse("get_system", cmaddr)
