"""Pooling layers (being written)."""
from __future__ import annotations

from .module import Module


class MaxPool2d(Module):
    """Placeholder: being written."""


class AvgPool2d(Module):
    """Placeholder: being written."""


class AdaptiveAvgPool2d(Module):
    """Placeholder: being written."""
