"""Evidence helpers shared by paper 003's claims: the runs of a group per
seed, their summaries (`spread.summary`), per-layer seed means.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.papers.p003_progressive.runs import KEEP


def group(results: Sequence[sweep.Result], keys: Sequence[str] = (),
          summarized: Sequence[str] = (), rename: Mapping[str, str] | None = None
          ) -> dict[str, Any]:
  """The runs of one group, per seed: seeds, final train / test accuracy and
  train loss, the recorded ``keys`` (under ``rename``'s names) and
  ``summary``: the per-layer `summary` of the ``summarized`` curves."""
  rename = rename or {}
  g = dict(seeds=[r.seed for r in results])
  g.update({rename.get(k, k): [r[k] for r in results] for k in KEEP + tuple(keys)})
  if summarized:
    g['summary'] = {k: layer_summaries(g[k]) for k in summarized}
  return g


def recorded_layers(study: reproduce.Study, kind: str) -> list[str]:
  """The tracked layers of the first finished run of ``kind`` ([] if none)."""
  rs = study.where(kind=kind)
  return list(rs[0]['layers']) if rs else []


def summary(values) -> dict[str, float | int] | None:
  """`spread.summary` of per-seed values; None unless every one is finite."""
  return spread.summary(values) if spread.finite(values) else None


def layer_summaries(curves) -> list:
  """Per-layer `summary` of per-seed curves ``[[per layer] per seed]``."""
  return [summary(col) for col in zip(*curves)]


def last(curves) -> list:
  """The last layer's value of each seed's curve."""
  return [c[-1] for c in curves if len(c)]


def seed_means(curves) -> list[float]:
  """Per-layer seed means of ``[[per layer] per seed]`` (NaN-aware, ragged curves)."""
  if not curves:
    return []
  m = np.full((len(curves), max(len(c) for c in curves)), np.nan)
  for i, c in enumerate(curves):
    m[i, :len(c)] = np.asarray(c, float)
  with warnings.catch_warnings():  # An all-NaN layer (a shallower depth) stays NaN.
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(m, 0).tolist()

