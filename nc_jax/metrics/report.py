"""Entry points: the full collapse report, in memory and from streamed statistics.

- `collapse_report(features, labels, ...)`: every metric of SPEC.md at once.
- `report_from_stats(stats, ...)`: the same from one-pass `FeatureStats`
  (from `stats.accumulate` / `merge` / `accumulate_sharded`).
- `ncc_mismatch(features, stats=..., classifier=...)`: the second pass NC4
  needs (it compares against the final class means).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax.metrics import _tiles
from nc_jax.metrics import checks
from nc_jax.metrics import core
from nc_jax.metrics import planning
from nc_jax.metrics import stats as stats_lib
from nc_jax.metrics.stats import ClassMoments, FeatureStats

BASE_KEYS = (
    "nc1", "fuzziness", "vci", "linear_probe_mse", "squared_distance",
    "cosine_within", "cosine_total", "class_separation", "cdnv", "nc2_etf",
    "nc2_equinorm", "nc2_equiangular", "gnc2_log_mean", "gnc2_log_var",
    "numerical_rank", "within_vb", "within_vb_perp")
CLASSIFIER_KEYS = ("nc3_self_duality", "nc3_cos_mean", "unc3_cos_var", "nc4_ncc_mismatch")
OOD_KEYS = ("nc5_ood_orthogonality",)


def _moment_metrics(m: ClassMoments, *, rank, rtol, w=None, ood_mean=None,
                    pair_rows=None) -> dict:
  """Every metric that needs only the class statistics (and W, mu_ood).

  Each value is the public building block of `core` (one copy of each
  formula); inside the jitted report XLA computes the eigen-decompositions
  they share once (common-subexpression elimination). ``pair_rows``: the
  pairwise metrics' path (`core.cdnv`).
  """
  r = dict(rank=rank, rtol=rtol)
  out = {
      "nc1": core.nc1(m, **r),
      "fuzziness": core.fuzziness(m, **r),
      "vci": core.vci(m, **r),
      "linear_probe_mse": core.linear_probe_mse(m, rtol=rtol),
      "squared_distance": core.squared_distance(m),
      "cosine_within": core.cosine_within(m),
      "cosine_total": core.cosine_total(m),
      "class_separation": core.class_separation(m),
      **core.pairwise(m, pair_rows=pair_rows),  # cdnv, nc2_etf, nc2_equiangular, gnc2_*
      "nc2_equinorm": core.nc2_equinorm(m),
      "within_vb": core.within_vb(m, **r),
      "within_vb_perp": core.within_vb_perp(m, **r),
  }
  if w is not None:
    out["nc3_self_duality"] = core.nc3_self_duality(m, w)
    out["nc3_cos_mean"], out["unc3_cos_var"] = core.nc3_uniform_duality(m, w)
  if ood_mean is not None:
    out["nc5_ood_orthogonality"] = core.nc5_ood_orthogonality(m, ood_mean)
  return out


def top_sq_singular_values(tiles: _tiles.ClassTiles, sums: _tiles.ClassSums, m: ClassMoments,
                           *, max_iters: int = 500) -> jax.Array:
  """||H_k||_2^2 for every class by power iteration on H_k^T H_k. [C].

  H_k^T H_k = S_k + n_k mu_k mu_k^T with S_k the centred scatter, applied
  from the class-sorted rows (`_tiles.sort_by_class`): each step is two fused
  passes over them (one product per tile each way) and a segment-sum over
  tiles; no C x p x p matrix. Starts from mu_k, which for raw features is
  close to the top singular direction, so it typically converges in a few
  steps. ``sums``: the layout's `_tiles.class_sums`.
  """

  def matvec(v):
    return (_tiles.scatter_matvec(tiles, sums, v)
            + (m.counts * jnp.sum(m.means * v, 1))[:, None] * m.means)

  return jax.lax.stop_gradient(
      core.linalg.top_eigenvalue(matvec, m.means, max_iters=max_iters))


@partial(jax.jit, static_argnames=("num_classes", "rank", "rtol", "pair_rows"))
def _report(features, labels, classifier, ood_features, *, num_classes, rank, rtol,
            pair_rows=None):
  m, tiles, sums = stats_lib.tiled_moments(features, labels, num_classes)
  w = None if classifier is None else classifier[0]
  ood_mean = None if ood_features is None else jnp.mean(ood_features, axis=0)
  out = _moment_metrics(m, rank=rank, rtol=rtol, w=w, ood_mean=ood_mean,
                        pair_rows=pair_rows)
  out["numerical_rank"] = core.numerical_rank_from_top(
      m, top_sq_singular_values(tiles, sums, m))
  if classifier is not None:
    count = core.ncc_mismatch_count(m, features, classifier[0], classifier[1])
    out["nc4_ncc_mismatch"] = count.astype(features.dtype) / features.shape[0]
  return out


def collapse_report(features, labels, *, num_classes: int, classifier=None,
                    ood_features=None, rank: int | None = None,
                    rtol: float | None = None,
                    pair_rows: int | None = None) -> dict[str, jax.Array]:
  """Every collapse metric of SPEC.md for features held in memory.

  Cost: one [N, p] x [N, p] GEMM for Sigma_W, one p x p eigen-decomposition
  for Sigma_T (vci, linear_probe_mse), one min(C, p)-sized one for Sigma_B,
  a few [N, p] passes (means, power iteration for numerical_rank), and the
  C x C x p products of the pairwise metrics. Memory O(N p + C p + p^2) plus
  C^2 up to `core.PAIR_BLOCK_ELEMS` pairs, T C beyond (row blocks of T
  classes). Traceable (usable inside jit/vmap/scan), in which
  case only shape checks run; see `checks.checked` for value checks there.

  Args:
    features: [N, p] features h_i (float32, or float64 with jax_enable_x64).
    labels: [N] integer labels in [0, num_classes). Classes with no samples
      are left out of every average; K counts the classes present.
    num_classes: C, static.
    classifier: optional (W [C, p], b [C] or None), the last linear layer,
      for nc3_* and nc4_ncc_mismatch.
    ood_features: optional [M, p] out-of-distribution features for
      nc5_ood_orthogonality.
    rank: r_B, number of Sigma_B eigenvalues kept (default min(p, K - 1)).
    rtol: relative eigenvalue cut of the pseudo-inverses (default
      `linalg.default_rtol`: 10 p eps of the dtype).
    pair_rows: the pairwise metrics (cdnv, nc2_etf, nc2_equiangular,
      gnc2_*): None lets `plan` pick for this device's memory (one C x C
      array up to `core.PAIR_BLOCK_ELEMS` pairs), 0 one C x C array, T > 0
      row blocks of T classes; the same values to rounding.

  Returns:
    Dict of scalars keyed by SPEC.md names: `BASE_KEYS`, plus
    `CLASSIFIER_KEYS` with a classifier and `OOD_KEYS` with ood_features.
    Under full collapse onto a simplex ETF with W = M^T: nc1 = vci = nc2_etf
    = nc3_self_duality = cdnv = 0.

  Raises:
    ValueError: bad shapes, float labels, labels out of range, NaN/Inf
      features, fewer than 2 classes present, classifier of the wrong shape.

  References:
    SPEC.md "Metrics"; Papyan et al. 2020; papers 000-004 as cited per key.
  """
  features, labels = checks.check_features_labels(features, labels, num_classes)
  classifier = checks.check_classifier(classifier, num_classes, features.shape[1])
  if ood_features is not None:
    ood_features = checks.check_features(ood_features, "ood_features", features.shape[1])
  if pair_rows is None:  # The planner's choice for this device's memory.
    pair_rows = planning.report_pair_rows(num_classes, features.dtype)
  return _report(features, labels, classifier, ood_features,
                 num_classes=num_classes, rank=rank, rtol=rtol, pair_rows=pair_rows)


# ----------------------------------------------------------------------------
# From streamed statistics.
# ----------------------------------------------------------------------------


def top_sq_singular_values_from_stats(stats: FeatureStats, *, max_iters: int = 500):
  """||H_k||_2^2 per class from per-class scatter: top eigenvalue of S_k + n_k mu_k mu_k^T."""
  if stats.pooled:
    raise ValueError("numerical_rank needs per-class scatter; these stats are pooled "
                     "(started with class_counts)")
  n = stats.counts.astype(stats.means.dtype)

  def matvec(v):
    return (jnp.einsum("kij,kj->ki", stats.scatter, v)
            + (n * jnp.sum(stats.means * v, 1))[:, None] * stats.means)

  return core.linalg.top_eigenvalue(matvec, stats.means, max_iters=max_iters)


@partial(jax.jit, static_argnames=("rank", "rtol", "pair_rows"))
def _report_from_stats(stats, w, ood_mean, *, rank, rtol, pair_rows=None):
  m = stats_lib.moments_from_stats(stats)  # traced: no host-side count check
  out = _moment_metrics(m, rank=rank, rtol=rtol, w=w, ood_mean=ood_mean,
                        pair_rows=pair_rows)
  if not stats.pooled:
    out["numerical_rank"] = core.numerical_rank_from_top(
        m, top_sq_singular_values_from_stats(stats))
  return out


def report_from_stats(stats: FeatureStats, *, classifier=None, ood_features=None,
                      ood_mean=None, rank: int | None = None,
                      rtol: float | None = None,
                      pair_rows: int | None = None) -> dict[str, jax.Array]:
  """The collapse report from one-pass statistics (equal to `collapse_report`).

  Gives every key one pass allows: all `BASE_KEYS` (numerical_rank only with
  the per-class layout), nc3_* with a classifier, nc5 with ood features or
  their mean. nc4_ncc_mismatch compares against the final class means and
  needs a second pass: `ncc_mismatch`.

  Args:
    stats: from `accumulate` / `merge` / `accumulate_sharded`.
    classifier: optional (W [C, p], b [C] or None).
    ood_features: optional [M, p]; or give their mean as ``ood_mean`` [p].
    rank, rtol, pair_rows: as in `collapse_report`.

  Raises:
    ValueError: fewer than 2 classes accumulated; classifier of the wrong
      shape; pooled stats whose counts differ from the declared ones.
  """
  if not checks.is_traced(stats.counts):
    present = int(np.sum(np.asarray(stats.counts) > 0))
    if present < 2:
      raise ValueError(f"at least 2 classes must have samples; only {present} accumulated")
  classifier = checks.check_classifier(classifier, stats.num_classes, stats.dim)
  stats_lib.moments_from_stats(stats)  # runs the pooled-count check
  if ood_features is not None:
    ood_features = checks.check_features(ood_features, "ood_features", stats.dim)
    ood_mean = jnp.mean(ood_features, axis=0)
  w = None if classifier is None else classifier[0]
  if pair_rows is None:  # The planner's choice (it needs only C and the dtype).
    pair_rows = planning.report_pair_rows(stats.num_classes, stats.means.dtype)
  return _report_from_stats(stats, w, ood_mean, rank=rank, rtol=rtol, pair_rows=pair_rows)


@jax.jit
def _ncc_mismatch(stats, features, w, b):
  m = stats_lib.moments_from_stats(stats)  # traced: no host-side count check
  return core.ncc_mismatch_count(m, features, w, b)


def ncc_mismatch(features, *, stats: FeatureStats, classifier) -> jax.Array:
  """Second pass for NC4: mismatches between classifier and nearest class mean.

  After a first pass has produced ``stats``, sum this over the batches and
  divide by N to get nc4_ncc_mismatch (SPEC.md `nc4_ncc_mismatch`):

      count = sum(ncc_mismatch(f, stats=stats, classifier=(W, b)) for f in batches)
      nc4 = count / stats.counts.sum()

  Returns:
    Integer scalar: number of rows of ``features`` that disagree.
  """
  features = checks.check_features(features, dim=stats.dim)
  w, b = checks.check_classifier(classifier, stats.num_classes, stats.dim)
  return _ncc_mismatch(stats, features, w, b)
