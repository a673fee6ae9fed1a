"""Every figure nc_jax draws, as PNG files next to the machine-readable outputs.

Functions take a path and plain arrays (or a `Workdir` and its records),
draw with matplotlib's Agg backend and return the path. matplotlib is
imported on first use, so ``import nc_jax.plots`` stays cheap.

- `curves`: named curves against a shared x axis;
- `training_plots`: the trainer's figures (accuracy, loss, collapse per layer);
- `distance_heatmaps`, `superclass_views`, `bars`: fine-grained and transfer
  studies (paper 004, 001);
- `heatmap`, `msdr_vs_sigma2`, `msdr_vs_tau2`: the simulators' sweeps;
- `scatter`, `xy_lines`: one metric against another (Pearson r in the legend);
  lines with their own x values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import records as records_lib


def _plt():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, path: str) -> str:
  """Lays out, writes and closes a figure; returns its path."""
  fig.tight_layout()
  fig.savefig(path)
  _plt().close(fig)
  return path


def _finish_xy(fig, ax, path: str, *, xlabel: str, ylabel: str, title: str) -> str:
  """Labels, a grid and a legend for a one-panel x-y figure, then `_save`."""
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return _save(fig, path)


def curves(path: str, x: Any, curves: Mapping[str, Any], *, xlabel: str = "step",
                title: str | None = None, logy: bool = False, logx: bool = False) -> str:
  """Plots named curves against ``x`` into the PNG file ``path``.

  Each value of ``curves`` is a 1-D array of the same length as ``x``.
  Non-positive values are dropped on a log axis.
  """
  plt = _plt()

  fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
  x = np.asarray(x, dtype=float)
  for name, y in curves.items():
    y = np.asarray(y, dtype=float)
    if logy:
      y = np.where(y > 0, y, np.nan)
    ax.plot(x, y, label=name, marker="o" if len(x) < 30 else None, ms=3)
  if logy:
    ax.set_yscale("log")
  if logx:
    ax.set_xscale("log")
  ax.set_xlabel(xlabel)
  if title:
    ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def training_plots(wd, records: list[dict], layers: tuple[str, ...]) -> None:
  """The trainer's PNGs (listed in the `nc_jax.train` docstring) into ``wd``.

  Args:
    wd: the run's `nc_jax.workdir.Workdir`.
    records: its metrics.jsonl records (`nc_jax.records`).
    layers: the tracked layers, input to output.
  """
  table = records_lib.eval_table(records)
  series = lambda split, layer, key: records_lib.series(
      records, key, split=split, layer=layer)
  epochs = series('train', 'penultimate', 'accuracy')[0]
  for key, logy in (('accuracy', False), ('loss', True)):
    curves(wd.file(f'{key}.png'), epochs, {
        s: series(s, 'penultimate', key)[1] for s in table}, xlabel='epoch',
        title=key, logy=logy)
  tracked = 'nc1' in table['train']['penultimate'][-1]
  if not tracked:
    return
  keys = ('nc1', 'vci', 'nc2_etf', 'nc3_self_duality', 'nc4_ncc_mismatch')
  curves(wd.file('collapse_penultimate.png'), epochs, {
      f'{s} {k}': series(s, 'penultimate', k)[1] for s in table for k in keys},
      xlabel='epoch', title='collapse at the penultimate layer', logy=True)
  for s in table:
    curves(wd.file(f'nc1_layers_{s}.png'), epochs, {
        layer: series(s, layer, 'nc1')[1] for layer in layers},
        xlabel='epoch', title=f'NC1 per layer ({s})', logy=True)
  _overview(wd.file('collapse.png'), table, layers, series)


def _overview(path: str, table, layers, series) -> None:
  """2 x 2 figure: accuracy; last-layer collapse; NC1 per layer; by depth."""
  plt = _plt()
  fig, ax = plt.subplots(2, 2, figsize=(11, 7.5), dpi=100)
  style = {s: {'train': '-', 'test': '--'}.get(s, ':') for s in table}
  for s in table:
    ax[0, 0].plot(*series(s, 'penultimate', 'accuracy'), style[s], label=s)
    for k, color in (('nc1', 'C0'), ('vci', 'C1'), ('nc2_etf', 'C2'),
                     ('nc3_self_duality', 'C3')):
      ax[0, 1].plot(*series(s, 'penultimate', k), style[s], color=color,
                    label=f'{s} {k}')
  cmap = plt.get_cmap('viridis')
  for i, layer in enumerate(layers):
    for s in table:
      ax[1, 0].plot(*series(s, layer, 'nc1'), style[s],
                    color=cmap(i / max(len(layers) - 1, 1)),
                    label=layer if s == 'train' else None)
  for s in table:
    final = [table[s][layer][-1].get('nc1', np.nan) for layer in layers]
    ax[1, 1].plot(range(len(layers)), final, style[s], marker='o', label=s)
  ax[1, 1].set_xticks(range(len(layers)), layers, rotation=45, ha='right',
                      fontsize=7)
  final_epoch = table['train']['penultimate'][-1]['epoch']
  titles = ('accuracy', 'penultimate layer (train -, test --)',
            'NC1 per layer over training (train -, test --)',
            f'NC1 by layer at epoch {final_epoch}')
  for a, title in zip(ax.flat, titles):
    a.set_title(title, fontsize=10)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    if a is not ax[0, 0]:
      a.set_yscale('log')
    if a is not ax[1, 1]:
      a.set_xlabel('epoch')
  _save(fig, path)


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
  return _save(fig, path)


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
  return _save(fig, path)


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
  return _save(fig, path)


def heatmap(path: str, z: np.ndarray, *, rows: Sequence[float], cols: Sequence[float],
             row_label: str, col_label: str, title: str, hatch: np.ndarray | None = None) -> str:
  """Log10 heatmap of z [R, C]; cells where ``hatch`` is true are greyed out."""
  plt = _plt()

  fig, ax = plt.subplots(figsize=(5.5, 4.4), dpi=110)
  with np.errstate(divide="ignore", invalid="ignore"):
    shown = np.log10(np.where(z > 0, z, np.nan))
  im = ax.imshow(shown, origin="lower", cmap="viridis", aspect="auto")
  fig.colorbar(im, ax=ax, label="log10")
  ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols], rotation=45, fontsize=7)
  ax.set_yticks(range(len(rows)), [f"{r:g}" for r in rows], fontsize=7)
  ax.set_xlabel(col_label)
  ax.set_ylabel(row_label)
  for (i, j), value in np.ndenumerate(z):
    if hatch is not None and hatch[i, j]:
      ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.85", hatch="xx",
                                 edgecolor="0.5", lw=0))
      ax.text(j, i, "H=0", ha="center", va="center", fontsize=6, color="k")
    else:
      ax.text(j, i, f"{value:.0e}", ha="center", va="center", fontsize=5, color="w")
  ax.set_title(title)
  return _save(fig, path)


def msdr_vs_sigma2(path: str, x: np.ndarray, lines: Mapping[str, tuple], title: str) -> str:
  """MSDR vs sigma^2 in two panels (sigma^2 <= 2 linear, >= 2 log), as in 004 Figs. 18-20.

  ``lines`` maps a label to (mean [P], std [P], fit [P] bool); points not
  fitted (training accuracy < 100% for some seed) are drawn in red.
  """
  plt = _plt()

  fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6), dpi=110, sharey=True)
  for ax, part in zip(axes, (x <= 2, x >= 2)):
    for label, (mean, std, fit, *_) in lines.items():
      (line,) = ax.plot(x[part], mean[part], marker="o", ms=3, label=label)
      ax.fill_between(x[part], (mean - std)[part], (mean + std)[part], alpha=0.15,
                      color=line.get_color())
      bad = part & ~fit
      ax.plot(x[bad], mean[bad], "o", color="red", ms=5)
    ax.grid(alpha=0.3)
    ax.set_xlabel("sigma^2")
  axes[1].set_xscale("log")
  axes[1].minorticks_off()
  axes[1].set_xticks(x[x >= 2], [f"{v:g}" for v in x[x >= 2]])
  axes[0].set_ylabel("MSDR")
  axes[1].legend(fontsize=7, title="red: train acc < 100%", title_fontsize=7)
  fig.suptitle(title, fontsize=10)
  return _save(fig, path)


def msdr_vs_tau2(path: str, x: np.ndarray, lines: Mapping[str, tuple]) -> str:
  plt = _plt()

  fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
  for label, (mean, std, fit, *_) in lines.items():
    (line,) = ax.plot(x, mean, marker="o", ms=3, label=label)
    ax.fill_between(x, mean - std, mean + std, alpha=0.15, color=line.get_color())
    ax.plot(x[~fit], mean[~fit], "o", color="red", ms=5)
  ax.set_xscale("log")
  ax.minorticks_off()
  ax.set_xticks(x, [f"{v:g}" for v in x])
  ax.set_xlabel("tau^2")
  ax.set_ylabel("MSDR")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, title="red: train acc < 100%", title_fontsize=7)
  ax.set_title("Similar vs dissimilar sub-classes (004 Fig. 21)", fontsize=10)
  return _save(fig, path)


def scatter(path: str, points: Mapping[str, tuple[Sequence[float], Sequence[float]]],
            *, xlabel: str, ylabel: str, title: str = "", logx: bool = False,
            annotate: Mapping[str, Sequence[str]] | None = None) -> str:
  """Scatter of named groups of (x, y) points, with Pearson r in the legend."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(4.6, 3.6), dpi=110)
  for name, (x, y) in points.items():
    x, y = np.asarray(x, float), np.asarray(y, float)
    xs = np.log10(x) if logx else x
    r = np.corrcoef(xs, y)[0, 1] if len(x) > 2 and np.std(xs) > 0 and np.std(y) > 0 else np.nan
    ax.plot(x, y, "o", ms=4, label=f"{name} (r = {r:.2f})")
    for i, text in enumerate((annotate or {}).get(name, ())):
      ax.annotate(text, (x[i], y[i]), fontsize=6, xytext=(2, 2),
                  textcoords="offset points")
  if logx:
    ax.set_xscale("log")
  return _finish_xy(fig, ax, path, xlabel=xlabel, ylabel=ylabel, title=title)


def xy_lines(path: str, lines: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
             xlabel: str, ylabel: str, title: str = "", logy: bool = False) -> str:
  """Named lines, each with its own x values (e.g. runs of different lengths)."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
  for name, (x, y) in lines.items():
    ax.plot(np.asarray(x, float), np.asarray(y, float), marker="o", ms=3, label=name)
  if logy:
    ax.set_yscale("log")
  return _finish_xy(fig, ax, path, xlabel=xlabel, ylabel=ylabel, title=title)
