"""Cluster-and-Linear-Probe (CLP): recover fine classes from coarse-trained features.

Paper 004 sec 4.3: a network trained on C~ coarse labels keeps its original
(fine) classes apart inside each super-class. CLP tests how much:

1. within each super-class s, embed the train features in 2-D (t-SNE) and
   split them by k-means into m_s clusters, m_s = the number of fine classes
   of s: cluster j of s becomes reconstructed label ``fine_classes(s)[j]``;
2. train a linear probe on the features with the reconstructed labels;
3. score it on the ORIGINAL test labels under the best one-to-one matching
   of reconstructed labels to classes (Hungarian assignment on the test
   confusion matrix; by default a cluster may only match a class of its own
   super-class, as the paper's per-super-class permutations).

The paper enumerates the permutations; the Hungarian assignment finds the same
optimum in O(C^3) (SPEC.md line 58).

References:
  Paper 004 sec 4.3 (Figs 11-12, App C.3); SPEC.md lines 57-58. Kuhn 1955
  (``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize
import sklearn.cluster

from nc_jax.probes import linear

EMBEDDINGS = ("tsne", "opentsne", "pca", "none")


def confusion_matrix(predictions: Any, labels: Any, *, num_classes: int) -> np.ndarray:
  """counts[r, c] = #samples predicted r with true class c. int64 [C, C]."""
  pred, y = np.asarray(predictions), np.asarray(labels)
  return np.bincount(pred * num_classes + y, minlength=num_classes ** 2).reshape(
      num_classes, num_classes)


def hungarian_match(counts: Any, *, allowed: Any = None) -> np.ndarray:
  """The one-to-one map r -> c maximising sum_r counts[r, map[r]] (Hungarian).

  Args:
    counts: [R, C] agreement counts (e.g. `confusion_matrix`), R <= C.
    allowed: optional [R, C] bool; pairs outside it are never matched.

  Returns:
    int [R]: the class matched to each row.

  Raises:
    ValueError: when ``allowed`` leaves no complete matching.

  References:
    Kuhn 1955; SPEC.md line 58 (CLP: Hungarian assignment, not enumeration).
  """
  counts = np.asarray(counts, np.float64)
  if counts.ndim != 2 or counts.shape[0] > counts.shape[1]:
    raise ValueError(f"counts must be [R, C] with R <= C; got {counts.shape}")
  if allowed is None:
    rows, cols = scipy.optimize.linear_sum_assignment(counts, maximize=True)
  else:
    allowed = np.asarray(allowed, bool)
    if allowed.shape != counts.shape:
      raise ValueError(f"allowed has shape {allowed.shape}, counts {counts.shape}")
    # Forbidden pairs cost more than any complete allowed matching gains.
    penalty = counts.sum() + 1.0
    cost = np.where(allowed, counts, -penalty * counts.shape[0])
    rows, cols = scipy.optimize.linear_sum_assignment(cost, maximize=True)
    if not allowed[rows, cols].all():
      raise ValueError("no one-to-one matching within the allowed pairs")
  mapping = np.empty(counts.shape[0], np.int64)
  mapping[rows] = cols
  return mapping


def matched_accuracy(predictions: Any, labels: Any, *, num_classes: int,
                     allowed: Any = None) -> tuple[float, np.ndarray]:
  """Top-1 of ``mapping[predictions]`` under the best one-to-one mapping.

  Args:
    predictions: [N] cluster (or reconstructed-label) ids in [0, C).
    labels: [N] true classes in [0, C).
    num_classes: C.
    allowed: optional [C, C] bool of admissible (cluster, class) pairs.

  Returns:
    (accuracy, mapping [C]).
  """
  counts = confusion_matrix(predictions, labels, num_classes=num_classes)
  mapping = hungarian_match(counts, allowed=allowed)
  return float(counts[np.arange(num_classes), mapping].sum() / len(labels)), mapping


def embed_2d(features: Any, *, method: str | Callable[..., np.ndarray] = "opentsne",
             seed: int = 0, perplexity: float = 30.0, num_threads: int | None = None
             ) -> np.ndarray:
  """2-D view of one super-class's features.

  Args:
    features: [n, p].
    method: ``'tsne'`` (scikit-learn, PCA init), ``'opentsne'`` (openTSNE's
      FFT-accelerated t-SNE, PCA init; benchmarks/bench_tsne.py), ``'pca'`` (top two principal
      components), ``'none'`` (the features unchanged), or a callable
      ``f(features, seed) -> [n, d]``.
    seed: t-SNE random state.
    perplexity: t-SNE perplexity (capped at (n - 1) / 3 for small n).
    num_threads: OpenMP threads for t-SNE (None: the library default). On a
      shared, oversubscribed machine 1 can be 10x faster than the default.

  Returns:
    [n, 2] (or [n, d] for ``'none'`` / a callable), float64.
  """
  x = np.asarray(features, np.float64)
  if callable(method):
    return np.asarray(method(x, seed), np.float64)
  if method not in EMBEDDINGS:
    raise ValueError(f"method must be one of {EMBEDDINGS} or a callable; got {method!r}")
  if method == "none":
    return x
  if method == "pca":
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:2].T
  perp = float(min(perplexity, max((len(x) - 1) / 3.0, 1.0)))
  if method == "opentsne":
    import openTSNE  # pylint: disable=g-import-not-at-top
    emb = openTSNE.TSNE(n_components=2, perplexity=perp, initialization="pca",
                        random_state=seed, n_jobs=num_threads or 1, verbose=False)
    return np.asarray(emb.fit(x), np.float64)
  import threadpoolctl
  from sklearn.manifold import TSNE
  tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
              random_state=seed)
  with threadpoolctl.threadpool_limits(limits=num_threads):
    return tsne.fit_transform(x)


class CLPResult(NamedTuple):
  """Outcome of `cluster_and_linear_probe`.

  Attributes:
    accuracy: CLP top-1 on the original test labels (best matching).
    mean_per_class: mean per-class accuracy under the same matching.
    mapping: [C] reconstructed label -> original class.
    train_indices: [n] the train samples clustered (all, or a subsample).
    reconstructed_labels: [n] their reconstructed labels (before ``mapping``).
    embeddings: {super-class: [n_s, 2]} the 2-D views, rows in the order of
      ``train_indices`` restricted to that super-class.
    reconstruction_accuracy: share of ``train_indices`` whose mapped
      reconstructed label equals the true fine label (NaN without them).
    probe: the linear probe trained on the reconstructed labels (its own
      ``top1`` compares unmatched labels: read ``accuracy`` instead).
  """

  accuracy: float
  mean_per_class: float
  mapping: np.ndarray
  train_indices: np.ndarray
  reconstructed_labels: np.ndarray
  embeddings: dict[int, np.ndarray]
  reconstruction_accuracy: float
  probe: linear.ProbeResult


def _subsample(idx: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
  if cap is None or len(idx) <= cap:
    return idx
  return np.sort(rng.choice(idx, cap, replace=False))


def reconstruct_labels(features: Any, coarse_labels: Any, *, fine_to_coarse: Any,
                       embedding: str | Callable[..., np.ndarray] = "opentsne",
                       seed: int = 0, perplexity: float = 30.0, kmeans_restarts: int = 10,
                       num_threads: int | None = None
                       ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
  """Step 1 of CLP: per super-class 2-D embedding and k-means into its sub-classes.

  Args:
    features: [n, p] train features.
    coarse_labels: [n] super-class labels.
    fine_to_coarse: [C] super-class of each original class (e.g. ``y mod C~``).
    embedding: see `embed_2d`.
    seed: seed of the embedding and of k-means.
    perplexity: t-SNE perplexity.
    kmeans_restarts: k-means restarts per super-class.
    num_threads: t-SNE threads (see `embed_2d`).

  Returns:
    (labels [n] in [0, C): cluster j of super-class s labelled with the j-th
    original class of s; {super-class: embedding [n_s, d]}).
  """
  x = np.asarray(features)
  coarse = np.asarray(coarse_labels)
  f2c = np.asarray(fine_to_coarse)
  recon = np.full(len(coarse), -1, np.int64)
  views = {}
  for s in np.unique(f2c):
    subs = np.flatnonzero(f2c == s)
    idx = np.flatnonzero(coarse == s)
    if len(idx) == 0:
      continue
    z = embed_2d(x[idx], method=embedding, seed=seed, perplexity=perplexity,
                 num_threads=num_threads)
    views[int(s)] = z
    if len(subs) == 1 or len(idx) < len(subs):
      recon[idx] = subs[0]
      continue
    # A 2-D embedding on the host: scikit-learn's k-means (k-means++,
    # ``kmeans_restarts`` inits, the lowest inertia kept).
    km = sklearn.cluster.KMeans(n_clusters=len(subs), n_init=kmeans_restarts,
                                random_state=seed + int(s)).fit(z)
    recon[idx] = subs[km.labels_]
  if (recon < 0).any():
    raise ValueError("coarse labels outside the super-classes of fine_to_coarse")
  return recon, views


def cluster_and_linear_probe(
    train_features: Any, train_coarse_labels: Any, test_features: Any, test_labels: Any,
    *, fine_to_coarse: Any, embedding: str | Callable[..., np.ndarray] = "opentsne",
    max_per_superclass: int | None = None, within_superclass: bool = True,
    train_fine_labels: Any = None, seed: int = 0, perplexity: float = 30.0,
    kmeans_restarts: int = 10, num_threads: int | None = None,
    **probe_kwargs: Any) -> CLPResult:
  """Cluster-and-Linear-Probe accuracy on the original classes (004 sec 4.3; SPEC.md line 58).

  Args:
    train_features: [N, p] features of a model trained on coarse labels.
    train_coarse_labels: [N] the coarse (super-class) training labels.
    test_features: [M, p].
    test_labels: [M] ORIGINAL (fine) test labels in [0, C).
    fine_to_coarse: [C] super-class of each original class.
    embedding: ``'tsne'`` (the paper), ``'pca'``, ``'none'`` or a callable
      (see `embed_2d`).
    max_per_superclass: cluster at most this many random train samples per
      super-class (t-SNE is O(n log n) per super-class); the probe trains on
      the same samples. None: all.
    within_superclass: match clusters only to classes of their super-class.
    train_fine_labels: optional [N] true fine labels, only to report
      ``reconstruction_accuracy``.
    seed: seed of the subsample, embedding, k-means and probe split.
    perplexity: t-SNE perplexity.
    kmeans_restarts: k-means restarts per super-class.
    num_threads: t-SNE threads (see `embed_2d`).
    **probe_kwargs: passed to `linear.linear_probe` (``l2_grid``, ...).

  Returns:
    `CLPResult`.

  References:
    Paper 004 sec 4.3; SPEC.md lines 57-58.
  """
  x = np.asarray(train_features)
  coarse = np.asarray(train_coarse_labels)
  f2c = np.asarray(fine_to_coarse)
  num_classes = len(f2c)
  if len(coarse) != len(x):
    raise ValueError(f"{len(x)} train features but {len(coarse)} coarse labels")
  rng = np.random.default_rng(seed)
  used = np.sort(np.concatenate([
      _subsample(np.flatnonzero(coarse == s), max_per_superclass, rng)
      for s in np.unique(coarse)]))
  recon, views = reconstruct_labels(
      x[used], coarse[used], fine_to_coarse=f2c, embedding=embedding, seed=seed,
      perplexity=perplexity, kmeans_restarts=kmeans_restarts, num_threads=num_threads)
  yt = np.asarray(test_labels)
  probe = linear.linear_probe(x[used], recon, test_features, yt, num_classes=num_classes,
                              seed=seed, **probe_kwargs)
  xt = np.asarray(test_features, np.float32)
  pred = np.argmax(xt @ probe.weights.T + probe.bias, axis=1)
  allowed = f2c[:, None] == f2c[None, :] if within_superclass else None
  accuracy, mapping = matched_accuracy(pred, yt, num_classes=num_classes, allowed=allowed)
  _, per_class = linear.accuracies(mapping[pred], yt, num_classes=num_classes)
  recon_acc = float("nan")
  if train_fine_labels is not None:
    recon_acc = float(np.mean(mapping[recon] == np.asarray(train_fine_labels)[used]))
  return CLPResult(accuracy, per_class, mapping, used, recon, views, recon_acc, probe)
