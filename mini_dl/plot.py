"""Plotting helpers shared by the book's chapters (matplotlib is imported on first use).

Colours come from the Okabe-Ito palette (distinguishable with colour-vision deficiencies) and mean
the same thing in every chapter: :data:`MINI_DL` and :data:`TORCH` for the two frameworks,
:data:`CLASS_COLORS` for the classes.
"""
from __future__ import annotations

import torch

MINI_DL = "#0072B2"  # blue
TORCH = "#D55E00"  # vermillion
CLASS_COLORS = ("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#D55E00",
                "#999999", "#000000", "#882255")
ERROR = "#000000"


def use_book_style() -> None:
    """Figure size, font sizes and colour cycle used throughout the book."""
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0), "figure.dpi": 100, "savefig.dpi": 100,
        "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 11, "axes.labelsize": 10,
        "legend.fontsize": 9, "axes.prop_cycle": plt.cycler(color=[MINI_DL, TORCH, *CLASS_COLORS]),
    })


def plot_points(ax, x: torch.Tensor, labels: torch.Tensor, *, size: float = 8,
                label_prefix: str = "class") -> None:
    """Scatter 2-D points coloured by integer label."""
    for cls in sorted(set(labels.tolist())):
        chosen = labels == cls
        ax.scatter(x[chosen, 0].cpu(), x[chosen, 1].cpu(), s=size, color=CLASS_COLORS[cls],
                   label=f"{label_prefix} {cls}")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")


def plot_decision_boundary(ax, predict, x: torch.Tensor, labels: torch.Tensor, *,
                           resolution: int = 200, margin: float = 0.05) -> None:
    """Shade the plane by ``predict(points).argmax(1)`` and draw the points on top.

    ``predict`` maps an ``(M, 2)`` tensor to ``(M, C)`` scores (a mini_dl or torch model).
    """
    low = x.min(0).values - margin
    high = x.max(0).values + margin
    g1 = torch.linspace(float(low[0]), float(high[0]), resolution, dtype=x.dtype)
    g2 = torch.linspace(float(low[1]), float(high[1]), resolution, dtype=x.dtype)
    grid1, grid2 = torch.meshgrid(g1, g2, indexing="xy")
    points = torch.stack([grid1.reshape(-1), grid2.reshape(-1)], 1).to(x.device)
    with torch.no_grad():
        classes = predict(points).argmax(1).reshape(resolution, resolution).cpu()
    from matplotlib.colors import ListedColormap

    n_classes = int(max(classes.max().item(), labels.max().item())) + 1
    # one band per class: class k fills (k - 1/2, k + 1/2] (integer levels would put 0 and 1
    # in the same band, since contourf's first band is closed at both ends)
    ax.contourf(grid1, grid2, classes, levels=(torch.arange(n_classes + 1) - 0.5).tolist(),
                cmap=ListedColormap(CLASS_COLORS[:n_classes]), alpha=0.25, vmin=-0.5,
                vmax=n_classes - 0.5)
    plot_points(ax, x, labels)


def plot_curves(ax, curves: dict, *, xlabel: str = "epoch", ylabel: str = "loss",
                log: bool = False) -> None:
    """One line per ``{label: values}`` entry; mini_dl/torch labels get their fixed colours."""
    for label, values in curves.items():
        color = MINI_DL if "mini_dl" in label else TORCH if "torch" in label else None
        ax.plot(range(1, len(values) + 1), values, label=label, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend()
