"""Test configuration: strict dtype promotion, so no implicit JAX type promotion hides a bug."""

import pathlib
import sys

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "python"))
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
