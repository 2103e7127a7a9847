"""Test configuration: strict dtype promotion, so no implicit JAX type promotion hides a bug; and
a persistent compilation cache under build/, shared with the example scripts the tests run in
subprocesses, so that a program compiled by one test is not compiled again by the next."""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / "build" / "jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
sys.path.insert(0, str(ROOT / "examples" / "python"))
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
