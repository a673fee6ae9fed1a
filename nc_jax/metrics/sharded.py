"""Class statistics of a batch split over the devices of a mesh.

`accumulate_sharded`: `stats.accumulate` through ``jax.shard_map``: each
device reduces its shard to centred class statistics and one ``psum`` merges
them exactly (multi-device and multi-host).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from nc_jax.metrics import _tiles
from nc_jax.metrics import checks
from nc_jax.metrics import stats as stats_lib


def accumulate_sharded(features, labels, *, num_classes: int, mesh: jax.sharding.Mesh,
                       axis_name: str = "data", stats: stats_lib.FeatureStats | None = None,
                       class_counts=None) -> stats_lib.FeatureStats:
  """`stats.accumulate` for a batch split over the devices (and hosts) of ``mesh``.

  Each device reduces its shard to centred class statistics; ``psum`` over
  ``axis_name`` combines them with the multi-part centred merge (global means
  first, then each shard's scatter plus n_shard (mu_shard - mu)(mu_shard -
  mu)^T), so the result equals one device's `accumulate` up to rounding. The
  statistics come back replicated. Works unchanged multi-host, given global
  arrays (e.g. from ``jax.make_array_from_process_local_data``).

  Args:
    features: [B, p], B divisible by the size of ``axis_name``.
    labels: [B] integers.
    num_classes: C.
    mesh: a ``jax.sharding.Mesh``.
    axis_name: the mesh axis the batch is split over.
    stats, class_counts: as in `stats.accumulate`.
  """
  features, labels = checks.check_features_labels(features, labels, num_classes,
                                                   min_classes=0)
  if stats is None:
    stats = stats_lib.empty_stats(num_classes, features.shape[1],
                                  dtype=features.dtype, class_counts=class_counts)
  size = mesh.shape[axis_name]
  if features.shape[0] % size:
    raise ValueError(f"batch of {features.shape[0]} does not split over {size} devices "
                     f"of mesh axis {axis_name!r}")
  return _accumulate_sharded(stats, features, labels, mesh=mesh, axis_name=axis_name)


@partial(jax.jit, static_argnames=("mesh", "axis_name"))
def _accumulate_sharded(stats, features, labels, *, mesh, axis_name):
  dtype = stats.means.dtype

  def local(st, f, y):
    b = stats_lib.batch_stats(f, y, st)
    psum = lambda x: jax.lax.psum(x, axis_name)
    n_l = b.counts.astype(dtype)
    n = psum(n_l)
    mean = _tiles.safe_div(psum(n_l[:, None] * b.means), n[:, None])
    delta = b.means - mean
    if st.pooled:
      extra = (delta * (n_l * st.class_weights)[:, None]).T @ delta
    else:
      extra = jnp.einsum("k,ki,kj->kij", n_l, delta, delta)
    unit_mean = _tiles.safe_div(psum(n_l[:, None] * b.unit_means), n[:, None])
    delta_u = b.unit_means - unit_mean
    total = stats_lib.FeatureStats(
        counts=psum(b.counts),
        means=mean,
        scatter=psum(b.scatter + extra),
        sq_dev=psum(b.sq_dev + n_l * jnp.sum(delta * delta, 1)),
        unit_means=unit_mean,
        unit_sq_dev=psum(b.unit_sq_dev + n_l * jnp.sum(delta_u * delta_u, 1)),
        class_weights=st.class_weights)
    return stats_lib.merge(st, total)

  rep = jax.tree.map(lambda _: P(), stats)
  fn = jax.shard_map(local, mesh=mesh, in_specs=(rep, P(axis_name), P(axis_name)),
                     out_specs=rep)
  return fn(stats, features, labels)
