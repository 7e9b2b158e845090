"""Flatten and Unflatten (being written)."""
from __future__ import annotations

from .module import Module


class Flatten(Module):
    """Placeholder: being written."""


class Unflatten(Module):
    """Placeholder: being written."""
