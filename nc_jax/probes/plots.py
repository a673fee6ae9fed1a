"""Figures of the fine-grained and transfer studies (PNG files, matplotlib Agg).

- `distance_heatmaps`: class distance matrices over epochs (004 Figs 3-6, 9).
- `superclass_views`: 2-D views of each super-class coloured by the original
  class (004 Figs 1, 7-8).
- `bars`: named accuracies side by side (004 Figs 11-12; 001 Table 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def superclass_order(fine_to_coarse: Sequence[int]) -> np.ndarray:
  """Original classes grouped by super-class (0, 5, 1, 6, ... for y mod 5)."""
  f2c = np.asarray(fine_to_coarse)
  return np.argsort(f2c, kind="stable")


def distance_heatmaps(path: str, matrices: Mapping[int, np.ndarray], *,
                      fine_to_coarse: Sequence[int], title: str = "",
                      class_names: Sequence[str] | None = None,
                      msdr: Mapping[int, float] | None = None) -> str:
  """One heat-map of D per epoch, classes grouped by super-class, blocks outlined.

  Each matrix is divided by its mean diagonal (the paper's per-panel colour
  scale), so panels of different epochs compare in shape.

  Args:
    path: output PNG.
    matrices: {epoch: [C, C] class distance matrix}.
    fine_to_coarse: [C] super-class of each class.
    title: figure title.
    class_names: tick labels (default the class indices).
    msdr: optional {epoch: MSDR} shown in the panel titles.
  """
  plt = _plt()
  order = superclass_order(fine_to_coarse)
  f2c = np.asarray(fine_to_coarse)[order]
  names = [str(c) for c in (class_names or range(len(order)))]
  epochs = sorted(matrices)
  fig, axes = plt.subplots(1, len(epochs), figsize=(2.9 * len(epochs) + 0.8, 3.2),
                           dpi=110, squeeze=False)
  for ax, epoch in zip(axes[0], epochs):
    d = np.asarray(matrices[epoch], np.float64)[np.ix_(order, order)]
    d = d / np.nanmean(np.diag(d))
    im = ax.imshow(d, cmap="viridis")
    edges = np.flatnonzero(np.diff(f2c)) + 0.5
    for e in edges:
      ax.axhline(e, color="w", lw=0.6)
      ax.axvline(e, color="w", lw=0.6)
    ax.set_xticks(range(len(order)), [names[i] for i in order], fontsize=6)
    ax.set_yticks(range(len(order)), [names[i] for i in order], fontsize=6)
    label = f"epoch {epoch}"
    if msdr is not None and epoch in msdr:
      label += f"\nMSDR {msdr[epoch]:.3g}"
    ax.set_title(label, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def superclass_views(path: str, views: Mapping[int, np.ndarray],
                     labels: Mapping[int, np.ndarray], *, title: str = "",
                     class_names: Sequence[str] | None = None) -> str:
  """Scatter of each super-class's 2-D view, coloured by the original class.

  Args:
    path: output PNG.
    views: {super-class: [n_s, 2]}.
    labels: {super-class: [n_s] original classes of the points}.
    title: figure title.
    class_names: legend names by original class.
  """
  plt = _plt()
  keys = sorted(views)
  fig, axes = plt.subplots(1, len(keys), figsize=(2.8 * len(keys), 3.0), dpi=110,
                           squeeze=False)
  for ax, s in zip(axes[0], keys):
    z, y = np.asarray(views[s]), np.asarray(labels[s])
    for i, c in enumerate(np.unique(y)):
      name = class_names[c] if class_names is not None else str(c)
      ax.scatter(z[y == c, 0], z[y == c, 1], s=2, alpha=0.6, color=f"C{i}", label=name)
    ax.set_title(f"super-class {s}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=6, markerscale=4, loc="best")
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path


def bars(path: str, values: Mapping[str, float], *, ylabel: str = "test accuracy",
         title: str = "") -> str:
  """Bar chart of named values, each bar labelled with its value."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(values), 3.4), dpi=110)
  names = list(values)
  v = [float(values[n]) for n in names]
  ax.bar(range(len(v)), v, color=[f"C{i}" for i in range(len(v))])
  for i, x in enumerate(v):
    ax.text(i, x, f"{x:.3f}", ha="center", va="bottom", fontsize=7)
  ax.set_xticks(range(len(v)), names, rotation=30, ha="right", fontsize=7)
  ax.set_ylabel(ylabel)
  ax.set_ylim(0, max(1.0, max(v) * 1.08))
  if title:
    ax.set_title(title, fontsize=9)
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
  return path
