"""Neural collapse metrics (SPEC.md), exact, streaming and sharded.

Quick use::

    from nc_jax import metrics
    report = metrics.collapse_report(features, labels, num_classes=10,
                                     classifier=(W, b))
    report["nc1"], report["vci"]

Building blocks: ``m = metrics.class_moments(features, labels, num_classes=C)``
then any single metric, e.g. ``metrics.nc1(m)``, ``metrics.cdnv_matrix(m)``,
``metrics.sigma_t_spectrum(m)``.

Streaming: ``stats = metrics.accumulate(f, y, num_classes=C, stats=stats)``
per batch, ``metrics.merge(a, b)``, ``metrics.report_from_stats(stats)``.

Many classes (a language model's vocabulary): past `PAIR_BLOCK_ELEMS` class
pairs the pairwise metrics reduce row blocks of classes instead of building
C x C arrays (``pair_rows``; `pair_tile_rows`); stream with the pooled
scatter (``accumulate(..., class_counts=...)``, p^2 memory, not C p^2).
``metrics.plan(N, p, C).table()`` gives each path's memory and cost first.
"""

from nc_jax.metrics.checks import checked
from nc_jax.metrics.core import (
    cdnv, cdnv_matrix, centred_means, class_separation, cosine_total,
    cosine_within, default_rank, fuzziness, global_mean, gnc2,
    linear_probe_mse, mean_sq_distances, nc1, nc2_equiangular, nc2_equinorm,
    nc2_etf, PAIR_BLOCK_ELEMS, pair_tile_rows, pairwise, nc3_self_duality, nc3_uniform_duality, nc5_ood_orthogonality,
    sigma_b, sigma_b_eig, sigma_b_spectrum, sigma_t, sigma_t_spectrum,
    squared_distance, trace_st_pinv_sb, vci, within_vb, within_vb_perp)
from nc_jax.metrics.generalization import (
    KMEANS_INITS, KMeansResult, collapse_beyond_train, kmeans,
    memorization_layers, memorization_ratio, memorization_ratios,
    strong_test_variance, train_variance, weak_test_variance,
    weak_test_variance_of)
from nc_jax.metrics.linalg import default_rtol
from nc_jax.metrics.planning import Plan, available_bytes, plan
from nc_jax.metrics.report import (
    BASE_KEYS, CLASSIFIER_KEYS, OOD_KEYS, collapse_report, ncc_mismatch,
    report_from_stats)
from nc_jax.metrics.sharded import accumulate_sharded
from nc_jax.metrics.stats import (
    ClassMoments, FeatureStats, accumulate, class_moments, empty_stats, merge,
    moments_from_stats)
from nc_jax.metrics.structure import (
    class_distance_matrix, class_distance_matrix_from_moments, msdr)
from nc_jax.metrics.variance import variance_to_means
