"""The README's example program runs and computes what it says."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_scales_the_array():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has a python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    np.testing.assert_array_equal(namespace["out"], np.full(32, 3.0, np.float32))


def test_readme_starts_with_the_two_commands():
    lines = [line for line in README.read_text().splitlines() if line.strip()]
    assert lines[1] == "```"
    assert lines[2].startswith("make demo") and lines[3].startswith("make test")
