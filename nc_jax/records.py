"""The records of a trainer run's ``metrics.jsonl``: their schema and selection.

`nc_jax.train.train_and_evaluate` logs one JSON object per line, of two kinds:

- evaluation records, one per (epoch, split, layer) of an evaluation:
  ``{"epoch", "step", "split", "layer", "num_examples", "accuracy", "loss",
  <SPEC.md metric names>}``; ``split`` is ``"train"``, ``"test"`` or a
  ``config.evals.sets`` name; nc3_*/nc4_* at ``"penultimate"`` only. Records
  of an extra label set (``config.evals.label_sets``) also carry ``"labels":
  "clean" | "fine" | "coarse"`` and the collapse report only; those of the
  training labels carry no ``"labels"`` (the label set `TASK` here);
- fit records, one per trained epoch (no ``"split"``): ``{"epoch", "step",
  "running_loss", "running_accuracy", "learning_rate", "l2_params",
  "l2_grads", "epoch_time_s", "eval_time_s"}``.

Epoch 0 is the initialisation. This module reads lists of such records (from
`nc_jax.workdir.read_jsonl` or `nc_jax.rundir.RunDir.records`) with NumPy
only, so plots and notebooks use it without importing the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

Record = Mapping[str, Any]

# The label set of the training labels (evaluation records without "labels").
TASK = 'task'
# Penultimate-layer metrics copied to the top of summary.json.
HEADLINE = ('nc1', 'vci', 'cdnv', 'nc2_etf', 'nc3_self_duality',
            'nc4_ncc_mismatch', 'squared_distance', 'cosine_within')


def is_eval(record: Record) -> bool:
  """Whether ``record`` is an evaluation record (else a fit record)."""
  return 'split' in record


def label_set(record: Record) -> str:
  """The label set of an evaluation record (`TASK` for the training labels)."""
  return record.get('labels', TASK)


def _order(record: Record) -> tuple[int, int]:
  return record['epoch'], record.get('step', 0)


def select(records: Iterable[Record], *, split: str | None = None,
           layer: str | None = None, labels: str | None = TASK) -> list[dict]:
  """The evaluation records of a split, layer and label set, in epoch order.

  Args:
    records: the records of a run.
    split: ``'train'``, ``'test'`` or a ``config.evals.sets`` name; None: any.
    layer: a tracked layer; None: any (then in file order within an epoch).
    labels: a label set (`TASK`: the training labels; ``'clean'``, ``'fine'``,
      ``'coarse'``); None: any.
  """
  out = [r for r in records if is_eval(r)
         and (split is None or r['split'] == split)
         and (layer is None or r['layer'] == layer)
         and (labels is None or label_set(r) == labels)]
  return sorted(out, key=_order)


def fits(records: Iterable[Record]) -> list[dict]:
  """The fit records (running loss, learning rate, timings), in epoch order."""
  return sorted((r for r in records if 'running_loss' in r), key=_order)


def eval_table(records: Iterable[Record], *, labels: str = TASK
               ) -> dict[str, dict[str, list[dict]]]:
  """``{split: {layer: [records in epoch order]}}`` of one label set."""
  table: dict[str, dict[str, list[dict]]] = {}
  for r in select(records, labels=labels):
    table.setdefault(r['split'], {}).setdefault(r['layer'], []).append(r)
  return table


def last(records: Iterable[Record], *, split: str, labels: str = TASK
         ) -> dict[str, dict]:
  """``{layer: the latest evaluation record}`` of one split and label set."""
  return {layer: rs[-1] for layer, rs in
          eval_table(records, labels=labels).get(split, {}).items()}


def series(records: Iterable[Record], key: str, *, split: str | None = 'train',
           layer: str = 'penultimate', labels: str = TASK
           ) -> tuple[np.ndarray, np.ndarray]:
  """(epochs [T] int, values [T] float) of one metric over a run.

  Args:
    records: the records of a run.
    key: a metric of the records (NaN where a record lacks it).
    split: the evaluation split; None: the fit records (``running_loss``,
      ``learning_rate``, ...).
    layer, labels: the layer and label set of the evaluation records.
  """
  rs = fits(records) if split is None else select(
      records, split=split, layer=layer, labels=labels)
  values = [r.get(key) for r in rs]
  return (np.array([r['epoch'] for r in rs], np.int64),
          np.array([np.nan if v is None else v for v in values], np.float64))


def summarize(records: Iterable[Record]) -> dict[str, Any]:
  """summary.json from the records of metrics.jsonl.

  Returns:
    ``{'epoch', 'step'}`` of the last evaluation; ``'<split>_<key>'`` for
    accuracy, loss and the `HEADLINE` metrics at the penultimate layer;
    ``'layers': {split: {layer: last record}}``; ``'terminal_phase_epoch'``
    (the first evaluated epoch with 100% train accuracy, or None) and
    ``'train_time_s'`` (training and evaluation time over the fit records).
  """
  records = list(records)
  table = eval_table(records)
  out: dict[str, Any] = {'layers': {}}
  for split, by_layer in table.items():
    latest = {layer: rs[-1] for layer, rs in by_layer.items()}
    out['layers'][split] = {
        layer: {k: v for k, v in r.items() if k not in ('split', 'layer')}
        for layer, r in latest.items()}
    pen = latest['penultimate']
    out['epoch'], out['step'] = pen['epoch'], pen['step']
    for k in ('accuracy', 'loss') + HEADLINE:
      if k in pen:
        out[f'{split}_{k}'] = pen[k]
  train_pen = table.get('train', {}).get('penultimate', [])
  out['terminal_phase_epoch'] = next(
      (r['epoch'] for r in train_pen if r['accuracy'] == 1.0), None)
  out['train_time_s'] = sum(r['epoch_time_s'] + r['eval_time_s']
                            for r in fits(records))
  return out
