"""Layer and group normalisation (being written)."""
from __future__ import annotations

from .module import Module


class LayerNorm(Module):
    """Placeholder: being written."""


class GroupNorm(Module):
    """Placeholder: being written."""
