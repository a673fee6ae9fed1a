"""Linear probes on frozen features: L-BFGS logistic regression and ridge (MSE).

Both probes pick their L2 strength on a validation split from a grid (paper
000: 97 log-spaced values in [1e-6, 1e6], `default_l2_grid`), with every grid
point solved in one vmapped computation, then refit on the whole train set at
the chosen strength and score top-1 and mean per-class accuracy on the test
set. The solvers (`fit_logistic`, `fit_ridge`, `ridge_loss`) and the
objectives they minimise are in `solvers`; they are re-exported here.

References:
  Xu & Liu (paper 000) sec 6.3; Kornblith et al. 2019; SPEC.md line 64
  (linear probe) and line 31 (linear_probe_mse). Paper 001 sec 3.2 and paper
  003 sec 4 for layer-wise probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from nc_jax.metrics import checks
from nc_jax.probes.solvers import fit_logistic, fit_ridge, ridge_loss  # ridge_loss: re-export


class ProbeResult(NamedTuple):
  """What a probe reports (host values, ready for ``Workdir.log``).

  Attributes:
    top1: test top-1 accuracy in [0, 1].
    mean_per_class: mean over test classes present of the per-class accuracy.
    l2: the chosen L2 strength.
    weights: [C, p] classifier W (logits = h W^T + b), refit on all train data.
    bias: [C] b (logistic: centred to sum 0, the loss is invariant to a shift).
    grid: [G] the L2 grid searched.
    val_top1: [G] validation top-1 at each grid point (NaN without a search).
  """

  top1: float
  mean_per_class: float
  l2: float
  weights: np.ndarray
  bias: np.ndarray
  grid: np.ndarray
  val_top1: np.ndarray


def default_l2_grid(num: int = 97, low: float = 1e-6, high: float = 1e6) -> np.ndarray:
  """``num`` log-spaced L2 strengths in [low, high] (000 sec 6.3: 97 in [1e-6, 1e6])."""
  return np.logspace(np.log10(low), np.log10(high), num)


def accuracies(predictions: Any, labels: Any, *, num_classes: int) -> tuple[float, float]:
  """(top-1, mean per-class accuracy) of integer predictions against labels.

  Args:
    predictions: [N] predicted classes.
    labels: [N] true classes in [0, num_classes).
    num_classes: C.

  Returns:
    Top-1 over samples and the mean over classes present of each class's
    accuracy (SPEC.md line 64).
  """
  pred, y = np.asarray(predictions), np.asarray(labels)
  correct = (pred == y).astype(np.float64)
  counts = np.bincount(y, minlength=num_classes)
  hits = np.bincount(y, weights=correct, minlength=num_classes)
  present = counts > 0
  return float(correct.mean()), float(np.mean(hits[present] / counts[present]))


def stratified_split(labels: Any, fraction: float, *, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Indices (train, val) with ``round(fraction n_k)`` of each class in val.

  Classes with a single sample stay in train; classes with two or more put at
  least one sample in val.
  """
  if not 0 < fraction < 1:
    raise ValueError(f"val_fraction must lie in (0, 1); got {fraction}")
  y = np.asarray(labels)
  rng = np.random.default_rng(seed)
  train, val = [], []
  for k in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == k))
    m = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(fraction * len(idx))))
    val.append(idx[:m])
    train.append(idx[m:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# ----------------------------------------------------------------------------
# Probes: L2 search on a validation split, refit, test accuracy.
# ----------------------------------------------------------------------------


def _logits(w, b, x):
  return np.asarray(jnp.einsum("...cp,np->...nc", w, x) + b[..., None, :])


def _val_loss(kind: str, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Mean validation loss per grid point: cross-entropy or squared error. [G]."""
  z = logits.astype(np.float64)
  if kind == "ridge":
    z[..., np.arange(len(labels)), labels] -= 1.0
    return 0.5 * np.mean(np.sum(z * z, axis=-1), axis=-1)
  z = z - z.max(axis=-1, keepdims=True)
  lse = np.log(np.sum(np.exp(z), axis=-1))
  return np.mean(lse - z[..., np.arange(len(labels)), labels], axis=-1)


def _probe(fit, kind, train_features, train_labels, test_features, test_labels, *,
           num_classes, l2_grid, val_fraction, val_data, refit, seed) -> ProbeResult:
  x = checks.check_features(train_features, "train_features")
  xt = checks.check_features(test_features, "test_features", dim=x.shape[1])
  y, yt = np.asarray(train_labels), np.asarray(test_labels)
  grid = np.atleast_1d(np.asarray(default_l2_grid() if l2_grid is None else l2_grid,
                                  np.float64))
  if val_data is not None:
    xv = checks.check_features(val_data[0], "val_features", dim=x.shape[1])
    yv = np.asarray(val_data[1])
  val_top1 = np.full(grid.shape, np.nan)
  l2 = float(grid[0])
  if grid.size > 1:
    if val_data is not None:
      xs, ys = x, y
    else:
      tr, va = stratified_split(y, val_fraction, seed=seed)
      xs, ys, xv, yv = x[tr], y[tr], x[va], y[va]
    w, b = fit(xs, ys, grid)
    logits = _logits(w, b, xv)
    val_top1 = (logits.argmax(-1) == yv[None]).mean(axis=1)
    # Ties in accuracy (common once the classes separate) go to the lowest
    # validation loss, not to an extreme of the grid.
    loss = np.where(val_top1 == val_top1.max(), _val_loss(kind, logits, yv), np.inf)
    best = int(np.argmin(loss))
    l2 = float(grid[best])
    w, b = w[best], b[best]
  if grid.size == 1 or refit:
    if val_data is not None and refit:
      x, y = jnp.concatenate([x, xv]), np.concatenate([y, yv])
    w, b = fit(x, y, np.array([l2]))
    w, b = w[0], b[0]
  top1, per_class = accuracies(_logits(w, b, xt).argmax(-1), yt, num_classes=num_classes)
  return ProbeResult(top1, per_class, l2, np.asarray(w), np.asarray(b), grid, val_top1)


def linear_probe(train_features: Any, train_labels: Any, test_features: Any,
                 test_labels: Any, *, num_classes: int, l2_grid: Any = None,
                 val_fraction: float = 0.2, val_data: tuple[Any, Any] | None = None,
                 refit: bool = True, seed: int = 0, max_iters: int = 1000,
                 gtol: float = 1e-6, batch_size: int | None = None) -> ProbeResult:
  """Multinomial logistic-regression probe by L-BFGS with an L2 search (SPEC.md line 64).

  Each L2 value of the grid is fitted on the train part of a stratified
  validation split (all grid points in one vmapped L-BFGS); the value with the
  best validation top-1 (ties: the lowest validation loss) is refitted on all train data
  (with ``val_data``: train + val) and scored on the test set.

  Args:
    train_features: [N, p] frozen features.
    train_labels: [N] in [0, num_classes).
    test_features: [M, p].
    test_labels: [M].
    num_classes: C.
    l2_grid: L2 strengths to search (default `default_l2_grid()`, 97 values
      in [1e-6, 1e6]); a single value skips the search.
    val_fraction: share of each class held out when ``val_data`` is None.
    val_data: an explicit ``(features, labels)`` validation set.
    refit: refit on all train data at the chosen strength.
    seed: seed of the validation split.
    max_iters: L-BFGS iterations cap per fit.
    gtol: gradient tolerance (see `fit_logistic`).
    batch_size: grid points per vmapped batch (None: all at once).

  Returns:
    `ProbeResult` (test top-1, mean per-class accuracy, chosen L2, ...).

  References:
    Paper 000 sec 6.3 (L-BFGS, 97 strengths in [1e-6, 1e6]); Kornblith et al.
    2019; SPEC.md line 64.
  """

  def fit(x, y, l2s):
    w, b, _ = fit_logistic(x, y, num_classes=num_classes, l2=l2s, max_iters=max_iters,
                           gtol=gtol, batch_size=batch_size)
    return w, b

  return _probe(fit, "logistic", train_features, train_labels, test_features, test_labels,
                num_classes=num_classes, l2_grid=l2_grid, val_fraction=val_fraction,
                val_data=val_data, refit=refit, seed=seed)


def ridge_probe(train_features: Any, train_labels: Any, test_features: Any,
                test_labels: Any, *, num_classes: int, l2_grid: Any = None,
                val_fraction: float = 0.2, val_data: tuple[Any, Any] | None = None,
                refit: bool = True, seed: int = 0, class_balanced: bool = False
                ) -> ProbeResult:
  """Closed-form MSE (ridge) probe with the same L2 search as `linear_probe`.

  Args:
    train_features, train_labels, test_features, test_labels, num_classes,
    l2_grid, val_fraction, val_data, refit, seed: as in `linear_probe`.
    class_balanced: weight each class equally in the squared loss.

  Returns:
    `ProbeResult`.

  References:
    Paper 000 Thm 5.1 and SPEC.md line 31 (the optimal MSE probe loss).
  """

  def fit(x, y, l2s):
    return fit_ridge(x, y, num_classes=num_classes, l2=l2s, class_balanced=class_balanced)

  return _probe(fit, "ridge", train_features, train_labels, test_features, test_labels,
                num_classes=num_classes, l2_grid=l2_grid, val_fraction=val_fraction,
                val_data=val_data, refit=refit, seed=seed)


def layerwise_probe(train_features: Mapping[str, Any], train_labels: Any,
                    test_features: Mapping[str, Any], test_labels: Any, *,
                    num_classes: int, kind: str = "logistic", **kwargs: Any
                    ) -> dict[str, ProbeResult]:
  """One probe per tracked layer: ``{layer: ProbeResult}``.

  Args:
    train_features: ``{layer name: [N, p_l]}`` (e.g. ``model(x)[1]``).
    train_labels: [N].
    test_features: ``{layer name: [M, p_l]}``, the same layers.
    test_labels: [M].
    num_classes: C.
    kind: ``'logistic'`` (`linear_probe`) or ``'ridge'`` (`ridge_probe`).
    **kwargs: passed to the probe (``l2_grid``, ``seed``, ...).

  Returns:
    Results in the order of ``train_features``.

  References:
    Paper 001 sec 3.2 (Fig 4), paper 003 sec 4 (layer-wise linear probing).
  """
  probes = {"logistic": linear_probe, "ridge": ridge_probe}
  if kind not in probes:
    raise ValueError(f"kind must be one of {tuple(probes)}; got {kind!r}")
  missing = set(train_features) ^ set(test_features)
  if missing:
    raise ValueError(f"train and test features disagree on layers {sorted(missing)}")
  return {name: probes[kind](h, train_labels, test_features[name], test_labels,
                             num_classes=num_classes, **kwargs)
          for name, h in train_features.items()}
