"""House rules, checked on the source: mini_dl computes every gradient by hand.

The scan reads the code through Python's ``ast``, so docstrings and comments may still *mention*
``torch.nn.Linear`` (they compare with it); only code that would use autograd or torch.nn fails.
``gradcheck.py`` is the one file allowed ``torch.func`` and ``torch.nn`` (checking against them
is its job); it is still held to every other rule.
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from pathlib import Path

import pytest

import mini_dl

PACKAGE = Path(mini_dl.__file__).parent
SOURCES = sorted(PACKAGE.glob("*.py"))
EXEMPT_FROM_TORCH_NN_AND_FUNC = {"gradcheck.py"}
FORBIDDEN_TORCH_MODULES = ("torch.autograd", "torch.nn", "torch.func")
# Whole layers in disguise: torch functions (and Tensor methods of the same names) that compute a
# layer, a loss or a softmax in one call, so that nothing would be left to derive. Called as
# ``torch.NAME(...)``, ``torch.special.NAME(...)`` or ``tensor.NAME(...)``, each is refused.
WHOLE_LAYER_FUNCTIONS = (
    "conv1d", "conv2d", "conv3d", "conv_transpose2d", "convolution", "max_pool2d",
    "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm", "layer_norm",
    "group_norm", "instance_norm", "native_batch_norm", "native_layer_norm", "embedding",
    "embedding_bag", "scaled_dot_product_attention", "softmax", "log_softmax", "cross_entropy",
    "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "huber_loss",
    "smooth_l1_loss", "l1_loss", "mse_loss", "gelu", "silu", "elu", "leaky_relu", "softplus",
    "logsigmoid", "dropout", "linear", "bilinear", "im2col", "col2im",
)


def dotted_name(node: ast.AST) -> str | None:
    """``torch.nn.functional`` for the expression ``torch.nn.functional``; None otherwise."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def is_false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def violations(source: str, allow: tuple[str, ...] = ()) -> list[str]:
    """Every use of autograd or of a forbidden torch module in ``source``, as 'line: what'.
    ``allow`` lists torch modules (e.g. ``"torch.func"``) this file may use."""
    forbidden = tuple(m for m in FORBIDDEN_TORCH_MODULES if m not in allow)

    def banned(name: str | None) -> bool:
        return name is not None and any(name == m or name.startswith(m + ".") for m in forbidden)

    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if banned(alias.name):
                    found.append(f"{line}: import {alias.name}")
                if alias.name == "torch" and alias.asname not in (None, "torch"):
                    found.append(f"{line}: torch imported as {alias.asname} hides its uses")
                if alias.name.split(".")[0] == "torch_twin":
                    found.append(f"{line}: mini_dl must not import torch_twin")
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported = [f"{node.module}.{alias.name}" for alias in node.names]
            if banned(node.module) or any(banned(name) for name in imported):
                found.append(f"{line}: from {node.module} import ...")
            if node.module.split(".")[0] == "torch_twin":
                found.append(f"{line}: mini_dl must not import torch_twin")
        elif isinstance(node, ast.Attribute):
            name = dotted_name(node)
            # One report per use, at its shortest forbidden prefix (torch.nn.Module: torch.nn).
            if banned(name) and not banned(name.rsplit(".", 1)[0]):
                found.append(f"{line}: {name}")
            if node.attr == "requires_grad" and isinstance(node.ctx, ast.Store):
                found.append(f"{line}: assigns .requires_grad")
        elif isinstance(node, ast.Call):
            function = node.func
            for keyword in node.keywords:
                if keyword.arg == "requires_grad" and not is_false(keyword.value):
                    found.append(f"{line}: requires_grad= in a call")
                if keyword.arg in ("retain_graph", "create_graph"):
                    found.append(f"{line}: {keyword.arg}= (an autograd backward)")
            if isinstance(function, ast.Attribute):
                if function.attr in WHOLE_LAYER_FUNCTIONS:
                    found.append(f"{line}: .{function.attr}() computes a whole layer")
                if function.attr == "requires_grad_" and not (node.args and is_false(node.args[0])):
                    found.append(f"{line}: .requires_grad_()")
                if dotted_name(function) in ("torch.enable_grad", "torch.set_grad_enabled") \
                        and not (node.args and is_false(node.args[0])):
                    found.append(f"{line}: {dotted_name(function)}()")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_package_source_uses_no_autograd_and_no_torch_nn(path):
    allow = ("torch.func", "torch.nn") if path.name in EXEMPT_FROM_TORCH_NN_AND_FUNC else ()
    assert violations(path.read_text(), allow) == []


def test_the_scan_covers_the_package():
    names = {path.name for path in SOURCES}
    assert {"module.py", "layers.py", "activation.py", "loss.py", "optim.py", "data.py",
            "train.py", "gradcheck.py"} <= names


# The scan must bite: each snippet holds one forbidden thing.
FORBIDDEN_SNIPPETS = [
    "x = torch.zeros(3, requires_grad=True)",
    "x.requires_grad_(True)",
    "x.requires_grad_()",
    "x.requires_grad = True",
    "g = torch.autograd.grad(y, x)",
    "from torch.autograd import grad",
    "from torch import autograd",
    "import torch.nn",
    "import torch.nn.functional as F",
    "from torch import nn",
    "from torch.nn import functional",
    "y = torch.nn.functional.relu(x)",
    "layer = torch.nn.Linear(2, 3)",
    "out, vjp = torch.func.vjp(f, x)",
    "from torch.func import vjp",
    "loss.backward(retain_graph=True)",
    "with torch.enable_grad():\n    pass",
    "torch.set_grad_enabled(True)",
    "import torch as t",
    "import torch_twin",
    "from torch_twin import to_torch",
    "y = torch.conv2d(x, w)",
    "y = x.softmax(dim=1)",
    "y = torch.log_softmax(x, 1)",
    "y = torch.special.log_softmax(x, 1)",
    "y = torch.layer_norm(x, (3,))",
    "y = torch.embedding(w, i)",
    "y = torch.max_pool2d(x, 2)",
    "y = torch.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, False)",
]


@pytest.mark.parametrize("snippet", FORBIDDEN_SNIPPETS)
def test_the_scan_flags_each_forbidden_use(snippet):
    assert len(violations(snippet)) == 1, violations(snippet)


def test_the_scan_ignores_docstrings_comments_and_allowed_calls():
    clean = '''
"""Matches ``torch.nn.Linear``; no torch.autograd, no requires_grad=True."""
import torch
# torch.nn.functional would be cheating
x = torch.zeros(3, requires_grad=False).requires_grad_(False)
with torch.no_grad():
    torch.set_grad_enabled(False)
'''
    assert violations(clean) == []


def test_gradcheck_may_use_torch_func_but_nothing_else():
    assert violations("out, vjp = torch.func.vjp(f, x)", allow=("torch.func", "torch.nn")) == []
    assert violations("torch.autograd.grad(y, x)", allow=("torch.func", "torch.nn")) != []


# -- documentation --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", mini_dl.__all__)
def test_every_public_name_has_a_docstring(name):
    value = getattr(mini_dl, name)
    if isinstance(value, (type, types.FunctionType, types.ModuleType)):
        # __doc__ itself, not inspect.getdoc, which would inherit a parent class's docstring.
        assert value.__doc__ and value.__doc__.strip(), f"mini_dl.{name} has no docstring"
    else:  # a constant: documented by a comment where it is defined
        definitions = [line for path in SOURCES for line in path.read_text().splitlines()
                       if re.match(rf"{name}\s*(:[^=]*)?=", line)]
        assert definitions and all("#" in line for line in definitions), (
            f"mini_dl.{name} needs a comment on its definition line")


def test_all_lists_unique_existing_names():
    assert len(set(mini_dl.__all__)) == len(mini_dl.__all__)
    for name in mini_dl.__all__:
        assert hasattr(mini_dl, name), name


def test_every_module_and_optimizer_class_of_the_package_is_exported():
    exported = {getattr(mini_dl, name) for name in mini_dl.__all__}
    for path in SOURCES:
        module = sys.modules.get(f"mini_dl.{path.stem}")  # None: not imported by mini_dl
        for name, value in (vars(module) if module else {}).items():
            if (inspect.isclass(value) and not name.startswith("_")
                    and value.__module__ == module.__name__
                    and issubclass(value, (mini_dl.Module, mini_dl.Optimizer))):
                assert value in exported, f"{module.__name__}.{name} is not in mini_dl.__all__"
