"""The JAX engine: fabric state, lowering of IR bodies, and the compiled entry points."""

from wsejax.engine.core import Engine
from wsejax.engine.state import FabricState

__all__ = ["Engine", "FabricState"]
