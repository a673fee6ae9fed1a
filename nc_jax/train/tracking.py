"""Collapse tracking: evaluation passes, summary.json and the plots.

`Evaluator` runs the model in eval mode over a data set in padded,
device-sharded batches, and in the same jitted step adds every tracked
layer's features to streaming `nc_jax.metrics` statistics (pooled Sigma_W
layout, whose update is one GEMM per layer; per-class at 'penultimate' with
``numerical_rank``). A second pass over the stored penultimate features gives
NC4, which compares against the final class means.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

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
from nc_jax.workdir import Workdir
from nc_jax.workdir import plot_curves

# Penultimate-layer metrics copied to the top of summary.json.
HEADLINE = ('nc1', 'vci', 'cdnv', 'nc2_etf', 'nc3_self_duality',
            'nc4_ncc_mismatch', 'squared_distance', 'cosine_within')


# ---------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------


def eval_loss(config, logits: jax.Array, labels: jax.Array) -> jax.Array:
  """[B] reported loss, without label smoothing or regularisers.

  CE at temperature tau for 'ce', CE of the online linear probe for
  'supcon', (1/2) ||z - e_y||^2 for 'mse'.
  """
  if config.loss == 'mse':
    return losses.mse(logits, labels)
  tau = config.temperature if config.loss == 'ce' else 1.0
  return losses.cross_entropy(logits, labels, temperature=tau)


def eval_step(params, rest, stats, images, labels, *, n_valid, config,
              graphdef, normalize, mesh, num_classes):
  """Forward pass in eval mode; adds the batch to every layer's statistics.

  Returns:
    (stats, summed loss, number correct, penultimate features [n_valid, p]).
  """
  model = nnx.merge(graphdef, params, rest)
  logits, feats = model(normalize(input_lib.to_unit(images)))
  full = n_valid == labels.shape[0]
  if not full:
    logits, labels = logits[:n_valid], labels[:n_valid]
    feats = {k: v[:n_valid] for k, v in feats.items()}
  loss = jnp.sum(eval_loss(config, logits, labels))
  correct = jnp.sum(jnp.argmax(logits, -1) == labels)
  new = {}
  for name, st in stats.items():
    f = feats[name].astype(jnp.float32)
    if full:  # Per-device centred statistics, one psum (exact merge).
      new[name] = metrics.accumulate_sharded(
          f, labels, num_classes=num_classes, mesh=mesh, stats=st)
    else:  # The ragged last batch: GSPMD partitions the plain update.
      new[name] = metrics.accumulate(f, labels, num_classes=num_classes,
                                     stats=st)
  return new, loss, correct, feats['penultimate'].astype(jnp.float32)


@jax.jit
def _ncc_count(stats, features, w, b):
  return metrics.ncc_mismatch(features, stats=stats, classifier=(w, b))


class Evaluator:
  """Accuracy, loss and collapse reports of one model state on data sets."""

  def __init__(self, config, graphdef, normalize, mesh, layers: tuple[str, ...],
               dims: Mapping[str, int], num_classes: int):
    self.config, self.graphdef, self.mesh = config, graphdef, mesh
    self.layers = layers if config.track_collapse else ()
    self.dims, self.num_classes = dims, num_classes
    self.step = jax.jit(
        functools.partial(eval_step, config=config, graphdef=graphdef,
                          normalize=normalize, mesh=mesh,
                          num_classes=num_classes),
        static_argnames='n_valid')

  def _empty_stats(self, labels: np.ndarray, layers: tuple[str, ...]):
    counts = np.bincount(labels, minlength=self.num_classes)
    out = {}
    for name in layers:
      per_class = name == 'penultimate' and self.config.numerical_rank
      out[name] = metrics.empty_stats(
          self.num_classes, self.dims[name],
          class_counts=None if per_class else counts)
    return jax.device_put(out, NamedSharding(self.mesh, P()))

  def __call__(self, state, ds: data.Dataset, *,
               track: bool = True) -> dict[str, dict[str, Any]]:
    """{layer: record} of `ds`.

    Args:
      state: the training state (its params and rest are used).
      ds: the data set.
      track: False (or ``config.track_collapse`` False) gives accuracy and
        loss only, as ``{'penultimate': record}``.
    """
    params, rest = state['params'], state['rest']
    layers = self.layers if track else ()
    stats = self._empty_stats(ds.labels, layers)
    loss = correct = 0.0
    penultimate = []
    batches = input_lib.eval_indices(len(ds), self.config.eval_batch_size)
    for idx, valid in batches:
      images, labels = input_lib.global_batch(self.mesh, ds.images[idx],
                                              ds.labels[idx])
      stats, l, c, h = self.step(params, rest, stats, images, labels,
                                 n_valid=valid)
      loss, correct = loss + l, correct + c
      if 'penultimate' in stats:
        penultimate.append(h)
    n = len(ds)
    base = dict(num_examples=n, accuracy=float(correct) / n,
                loss=float(loss) / n)
    records = {name: dict(base) for name in layers or ('penultimate',)}
    w, b = models.classifier_params(nnx.merge(self.graphdef, params, rest))
    for name, st in stats.items():
      clf = (w, b) if name == 'penultimate' else None
      report = metrics.report_from_stats(st, classifier=clf)
      records[name].update({k: float(v) for k, v in report.items()})
      if clf is not None:  # NC4 compares with the final means: second pass.
        count = sum(int(_ncc_count(st, h, w, b)) for h in penultimate)
        records[name]['nc4_ncc_mismatch'] = count / n
    return records


# ---------------------------------------------------------------------------
# Summary and plots.
# ---------------------------------------------------------------------------


def _eval_table(records) -> dict[str, dict[str, list[dict]]]:
  """{split: {layer: [records by epoch]}} of the evaluation records."""
  table: dict[str, dict[str, list[dict]]] = {}
  for r in records:
    if 'split' in r:
      table.setdefault(r['split'], {}).setdefault(r['layer'], []).append(r)
  return table


def summarize(records: list[dict]) -> dict[str, Any]:
  """summary.json from the records of metrics.jsonl."""
  table = _eval_table(records)
  out: dict[str, Any] = {'layers': {}}
  for split, by_layer in table.items():
    last = {layer: rs[-1] for layer, rs in by_layer.items()}
    out['layers'][split] = {
        layer: {k: v for k, v in r.items() if k not in ('split', 'layer')}
        for layer, r in last.items()}
    pen = last['penultimate']
    out['epoch'], out['step'] = pen['epoch'], pen['step']
    for k in ('accuracy', 'loss') + HEADLINE:
      if k in pen:
        out[f'{split}_{k}'] = pen[k]
  train_pen = table.get('train', {}).get('penultimate', [])
  out['terminal_phase_epoch'] = next(
      (r['epoch'] for r in train_pen if r['accuracy'] == 1.0), None)
  fits = [r for r in records if 'training_loss' in r]
  out['train_time_s'] = sum(r['epoch_time_s'] + r['eval_time_s'] for r in fits)
  return out


def write_plots(wd: Workdir, records: list[dict], layers: tuple[str, ...]):
  """Writes the PNGs listed in the `nc_jax.train` docstring into `wd`."""
  table = _eval_table(records)
  series = lambda split, layer, key: (
      [r['epoch'] for r in table[split][layer]],
      [r.get(key, np.nan) for r in table[split][layer]])
  epochs = series('train', 'penultimate', 'accuracy')[0]
  for key, logy in (('accuracy', False), ('loss', True)):
    plot_curves(wd.file(f'{key}.png'), epochs, {
        s: series(s, 'penultimate', key)[1] for s in table}, xlabel='epoch',
        title=key, logy=logy)
  tracked = 'nc1' in table['train']['penultimate'][-1]
  if not tracked:
    return
  keys = ('nc1', 'vci', 'nc2_etf', 'nc3_self_duality', 'nc4_ncc_mismatch')
  plot_curves(wd.file('collapse_penultimate.png'), epochs, {
      f'{s} {k}': series(s, 'penultimate', k)[1] for s in table for k in keys},
      xlabel='epoch', title='collapse at the penultimate layer', logy=True)
  for s in table:
    plot_curves(wd.file(f'nc1_layers_{s}.png'), epochs, {
        layer: series(s, layer, 'nc1')[1] for layer in layers},
        xlabel='epoch', title=f'NC1 per layer ({s})', logy=True)
  _overview(wd.file('collapse.png'), table, layers, series)


def _overview(path: str, table, layers, series) -> None:
  """2 x 2 figure: accuracy; last-layer collapse; NC1 per layer; by depth."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(2, 2, figsize=(11, 7.5), dpi=100)
  style = {'train': '-', 'test': '--'}
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
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)

