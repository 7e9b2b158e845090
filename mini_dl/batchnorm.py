"""Batch normalisation (being written)."""
from __future__ import annotations

from .module import Module


class BatchNorm1d(Module):
    """Placeholder: being written."""


class BatchNorm2d(Module):
    """Placeholder: being written."""
