"""README's Python examples run as written (the README stays true)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    code = compile(BLOCKS[index], f"README.md, python block {index + 1}", "exec")
    exec(code, {})  # noqa: S102 (our own README)
    assert capsys.readouterr().out  # every example prints something
