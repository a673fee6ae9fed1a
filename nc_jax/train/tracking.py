"""Collapse tracking: the evaluation passes whose records metrics.jsonl holds.

`Evaluator` runs the model in eval mode over a data set in padded,
device-sharded batches, and in the same jitted step adds every tracked
layer's features to streaming `nc_jax.metrics` statistics (pooled Sigma_W
layout, whose update is one GEMM per layer; per-class at 'penultimate' with
``numerical_rank``). A second pass over the stored penultimate features gives
NC4, which compares against the final class means.

The records' schema and summary.json: `nc_jax.records`; plots: `nc_jax.plots`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nc_jax import data
from nc_jax import metrics
from nc_jax import models
from nc_jax.train import input as input_lib
from nc_jax.train import losses


# ---------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------


class EvalSpec(NamedTuple):
  """The static choices of an evaluation step (hashable: one compile each)."""

  graphdef: Any
  mesh: jax.sharding.Mesh
  loss: str  # config.loss.name: which loss the records report.
  num_classes: tuple[tuple[str, int], ...]  # (label set, C), 'task' first.


def eval_loss(loss: str, logits: jax.Array, labels: jax.Array,
              temperature=1.0) -> jax.Array:
  """[B] reported loss, without label smoothing or regularisers.

  CE at temperature tau for 'ce', CE of the online linear probe for
  'supcon', (1/2) ||z - e_y||^2 for 'mse'.
  """
  if loss == 'mse':
    return losses.mse(logits, labels)
  return losses.cross_entropy(logits, labels,
                              temperature=temperature if loss == 'ce' else 1.0)


@functools.partial(jax.jit, static_argnames=('n_valid', 'spec'))
def eval_step(params, rest, stats, images, labels, normalize, temperature, *,
              n_valid: int, spec: EvalSpec):
  """Forward pass in eval mode; adds the batch to every layer's statistics.

  Args:
    stats: ``{label set: {layer: FeatureStats}}``; ``'task'`` is the
      training labels' set.
    labels: ``{label set: [B] int32}`` (``'task'`` gives loss and accuracy).
    normalize: the input `model.Normalizer`.
    temperature: the CE temperature the loss is reported at.

  Returns:
    (stats, summed loss, number correct, penultimate features [n_valid, p]).
  """
  model = nnx.merge(spec.graphdef, params, rest)
  logits, feats = model(normalize(input_lib.to_unit(images)))
  logits = logits.astype(jnp.float32)  # Loss and accuracy in float32, as the statistics.
  full = n_valid == logits.shape[0]
  if not full:
    logits = logits[:n_valid]
    labels = {k: v[:n_valid] for k, v in labels.items()}
    feats = {k: v[:n_valid] for k, v in feats.items()}
  loss = jnp.sum(eval_loss(spec.loss, logits, labels['task'], temperature))
  correct = jnp.sum(jnp.argmax(logits, -1) == labels['task'])
  num_classes = dict(spec.num_classes)
  new = {}
  for label_set, by_layer in stats.items():
    y, k = labels[label_set], num_classes[label_set]
    new[label_set] = {}
    for name, st in by_layer.items():
      f = feats[name].astype(jnp.float32)
      if full:  # Per-device centred statistics, one psum (exact merge).
        new[label_set][name] = metrics.accumulate_sharded(
            f, y, num_classes=k, mesh=spec.mesh, stats=st)
      else:  # The ragged last batch: GSPMD partitions the plain update.
        new[label_set][name] = metrics.accumulate(f, y, num_classes=k,
                                                  stats=st)
  return new, loss, correct, feats['penultimate'].astype(jnp.float32)


@jax.jit
def _ncc_count(stats, features, w, b):
  return metrics.ncc_mismatch(features, stats=stats, classifier=(w, b))


@functools.partial(jax.jit, static_argnames=('graphdef', 'layers'))
def forward(params, rest, images, normalize, *, graphdef,
            layers: tuple[str, ...]) -> dict[str, jax.Array]:
  """Eval-mode ``{layer: float32 features}`` of uint8 ``images``.

  ``'logits'`` may be one of the layers. One executable per (model
  structure, layers, input shape): reading many checkpoints, or the runs of
  a sweep, compiles once.
  """
  logits, feats = nnx.merge(graphdef, params, rest)(
      normalize(input_lib.to_unit(images)))
  feats = dict(feats, logits=logits)
  return {k: feats[k].astype(jnp.float32) for k in layers}


def label_sets(ds: data.Dataset, names: tuple[str, ...]) -> dict[str, Any]:
  """{label set: (labels [N], C)}: the task's, then those of ``names`` on ``ds``.

  ``'clean'``: labels before noise (the task's when there was none);
  ``'fine'`` / ``'coarse'``: the labels before a `label_map` (missing ones
  are skipped).
  """
  out = {'task': (ds.labels, ds.num_classes)}
  for name in names:
    y = getattr(ds, f'{name}_labels')
    if name == 'clean' and y is None:
      y = ds.labels
    if y is not None:
      out[name] = (np.asarray(y, np.int32),
                   ds.num_classes if name == 'clean' else int(y.max()) + 1)
  return out


class Evaluator:
  """Accuracy, loss and collapse reports of one model state on data sets."""

  def __init__(self, config, graphdef, normalize, mesh, layers: tuple[str, ...],
               dims: Mapping[str, int], num_classes: int):
    self.graphdef, self.mesh, self.normalize = graphdef, mesh, normalize
    self.evals, self.loss = config.evals, config.loss.name
    self.temperature = jnp.float32(config.loss.kwargs.get('temperature', 1.0))
    self.layers = layers if config.evals.track_collapse else ()
    self.dims, self.num_classes = dims, num_classes

  def _empty_stats(self, sets, layers: tuple[str, ...]):
    out = {}
    for label_set, (labels, k) in sets.items():
      counts = np.bincount(labels, minlength=k)
      out[label_set] = {}
      for name in layers:
        per_class = (name == 'penultimate' and self.evals.numerical_rank
                     and label_set == 'task')
        out[label_set][name] = metrics.empty_stats(
            k, self.dims[name], class_counts=None if per_class else counts)
    return jax.device_put(out, NamedSharding(self.mesh, P()))

  def __call__(self, state, ds: data.Dataset, *, track: bool = True
               ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{label set: {layer: record}}`` of ``ds``.

    Args:
      state: the training state (its params and rest are used).
      ds: the data set.
      track: False (or ``config.evals.track_collapse`` False) gives accuracy and
        loss only, as ``{'task': {'penultimate': record}}``.

    The ``'task'`` records carry accuracy, loss and the full report (NC3/NC4
    at ``'penultimate'``); those of the other label sets
    (``config.evals.label_sets``) the collapse report against those labels.
    """
    params, rest = state['params'], state['rest']
    layers = self.layers if track else ()
    sets = label_sets(ds, tuple(self.evals.label_sets) if layers else ())
    stats = self._empty_stats(sets, layers)
    spec = EvalSpec(self.graphdef, self.mesh, self.loss,
                    tuple((k, c) for k, (_, c) in sets.items()))
    loss = correct = 0.0
    penultimate = []
    for idx, valid in input_lib.eval_indices(len(ds),
                                             self.evals.batch_size):
      images, *labels = input_lib.global_batch(
          self.mesh, ds.images[idx], *(y[idx] for y, _ in sets.values()))
      stats, l, c, h = eval_step(params, rest, stats, images,
                                 dict(zip(sets, labels)), self.normalize,
                                 self.temperature, n_valid=valid, spec=spec)
      loss, correct = loss + l, correct + c
      if layers and 'penultimate' in layers:
        penultimate.append(h)
    n = len(ds)
    base = dict(num_examples=n, accuracy=float(correct) / n,
                loss=float(loss) / n)
    out = {'task': {name: dict(base) for name in layers or ('penultimate',)}}
    w, b = models.classifier_params(nnx.merge(self.graphdef, params, rest))
    for label_set, by_layer in stats.items():
      records = out.setdefault(label_set, {})
      for name, st in by_layer.items():
        clf = (w, b) if name == 'penultimate' and label_set == 'task' else None
        report = metrics.report_from_stats(st, classifier=clf)
        records.setdefault(name, dict(num_examples=n)).update(
            {k: float(v) for k, v in report.items()})
        if clf is not None:  # NC4 compares with the final means: second pass.
          count = sum(int(_ncc_count(st, h, w, b)) for h in penultimate)
          records[name]['nc4_ncc_mismatch'] = count / n
    return out
