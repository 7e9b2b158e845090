"""Convolution layers (being written)."""
from __future__ import annotations

from .module import Module


class Conv2d(Module):
    """Placeholder: being written."""
