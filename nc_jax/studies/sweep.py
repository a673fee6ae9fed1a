"""The sweep runner: named runs, each in its own sub-workdir, resumable.

A study is a list of `Run`s (a grid or list of config overrides x seeds).
`run_all` executes them in order into ``workdir/runs/<name>/``; a run whose
``run.json`` exists is complete and skipped, so a killed sweep resumes where
it stopped (a trainer run that was interrupted resumes from its own
checkpoint). ``only=`` runs a single named run (and the runs it depends on,
skipping finished ones). `table` gathers the finished runs' final numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ml_collections

from nc_jax import process
from nc_jax.train import config as config_lib

from nc_jax.workdir import Workdir, to_python

RUN_FILE = 'run.json'  # Written when a run has finished: its record.


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a study.

  Attributes:
    name: unique within the study; the sub-workdir ``runs/<name>``.
    execute: ``(run, run_dir) -> final`` (a dict of numbers); e.g.
      ``train()``, which trains ``config`` with the nc_jax trainer.
    config: what the run computes (a trainer config for `train`).
    seed: the run's seed (recorded).
    overrides: the settings that distinguish it from the study's base
      (recorded in results.json).
    deps: names of runs that must finish first (e.g. the pretraining a
      fine-tuning run starts from).
    tags: what the run is, for claims to select it by (`where`):
      ``dict(kind='size', train_size=4000, seed=1)``. ``seed`` is added
      from the run's seed when absent.
  """

  name: str
  execute: Callable[['Run', str], Mapping[str, Any]]
  config: Any = None
  seed: int = 0
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  deps: tuple[str, ...] = ()
  tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def all_tags(self) -> dict[str, Any]:
    """``tags`` with the run's seed under ``seed`` unless tagged otherwise."""
    return {'seed': self.seed, **self.tags}

  def matches(self, **tags) -> bool:
    mine = self.all_tags
    return all(k in mine and _same(mine[k], v) for k, v in tags.items())


def _same(a: Any, b: Any) -> bool:
  """Tag equality, with 4000 == 4000.0 (numbers from configs may be either)."""
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return float(a) == float(b)
  return a == b


@dataclasses.dataclass(frozen=True)
class Result:
  """A finished run as a claim reads it: its tags, record and folder."""

  name: str
  tags: Mapping[str, Any]
  seed: int
  final: Mapping[str, Any]
  path: str  # The run's folder, ``workdir/runs/<name>``.

  def __getitem__(self, key: str) -> Any:
    """A final number: ``result['test_accuracy']``."""
    return self.final[key]


def where(runs: Sequence[Run], records: Mapping[str, Mapping[str, Any]], workdir: str,
          **tags) -> list[Result]:
  """The finished runs of ``runs`` whose tags include ``tags`` (plan order).

  ``where(runs, records, wd, kind='size', train_size=4000)`` ; ``seed`` matches
  the run's seed unless the run tags it otherwise.
  """
  return [Result(name=r.name, tags=r.all_tags, seed=r.seed,
                 final=records[r.name]['final'], path=run_dir(workdir, r.name))
          for r in runs if r.name in records and r.matches(**tags)]


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
  """Every combination of the given values, e.g. ``grid(lr=[.1, .01], seed=[0, 1])``."""
  keys = list(axes)
  return [dict(zip(keys, v)) for v in itertools.product(*axes.values())]


def run_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, 'runs', name)


def is_complete(workdir: str, name: str) -> bool:
  return os.path.exists(os.path.join(run_dir(workdir, name), RUN_FILE))


def read_run(workdir: str, name: str) -> dict[str, Any]:
  with open(os.path.join(run_dir(workdir, name), RUN_FILE)) as f:
    return json.load(f)


def _closure(runs: Sequence[Run], only: str) -> list[Run]:
  by_name = {r.name: r for r in runs}
  if only not in by_name:
    raise ValueError(f'no run named {only!r}; the study has: '
                     f'{", ".join(by_name)}')
  need, stack = [], [only]
  while stack:
    name = stack.pop()
    if name not in need:
      need.append(name)
      stack.extend(by_name[name].deps)
  return [r for r in runs if r.name in need]


def run_all(runs: Sequence[Run], workdir: str, *, only: str = '',
            say: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
  """Executes the unfinished runs; returns ``{name: record}`` of those run or found.

  Args:
    runs: the study's runs, in an order that respects ``deps``.
    workdir: the study's folder (runs go to ``workdir/runs/<name>``).
    only: run just this run (and its unfinished dependencies). It is rerun
      even when finished (its old sub-workdir is replaced), so its numbers
      can be compared with the recorded ones.
    say: progress messages.

  Returns:
    ``{name: {"seed", "overrides", "seconds", "final"}}``.
  """
  names = [r.name for r in runs]
  if len(set(names)) != len(names):
    dup = sorted({n for n in names if names.count(n) > 1})
    raise ValueError(f'run names must be unique; repeated: {dup}')
  todo = _closure(runs, only) if only else list(runs)
  out = {}
  for i, run in enumerate(todo):
    rdir = run_dir(workdir, run.name)
    if is_complete(workdir, run.name) and run.name != only:
      out[run.name] = read_run(workdir, run.name)
      continue
    if run.name == only and os.path.isdir(rdir):
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(rdir)
    missing = [d for d in run.deps if not is_complete(workdir, d)]
    if missing:
      raise RuntimeError(f'run {run.name} needs {missing} to finish first')
    say(f'[{i + 1}/{len(todo)}] {run.name}')
    t = time.perf_counter()
    final = run.execute(run, rdir)
    record = dict(seed=run.seed, overrides=to_python(dict(run.overrides)),
                  seconds=round(time.perf_counter() - t, 2),
                  final=to_python(dict(final)))
    Workdir(rdir).write_json(RUN_FILE, record)
    out[run.name] = record
    process.release_programs_near_map_limit()  # Many models in one process.
  return out


def headline(summary: Mapping[str, Any]) -> dict[str, Any]:
  """The scalar entries of a trainer summary (what a run records by default)."""
  return {k: v for k, v in summary.items()
          if not isinstance(v, (dict, list)) and v is not None}


def train(keep: Iterable[str] | None = None,
          then: Callable[[Run, str], Mapping[str, Any]] | None = None
          ) -> Callable[[Run, str], Mapping[str, Any]]:
  """The executor of trainer runs: train ``run.config`` (resumable), then record.

  Args:
    keep: the summary keys to record (missing ones are recorded as None);
      None records every scalar of the summary (`headline`), ``()`` none.
    then: ``(run, run_dir) -> dict`` computed after training (an analysis
      of the trained run), merged into the record.

  Returns:
    An ``execute`` for `Run`: ``sweep.Run(name, sweep.train(), config)``.
  """
  keep = None if keep is None else tuple(keep)

  def execute(run: Run, rdir: str) -> Mapping[str, Any]:
    from nc_jax import train as trainer  # pylint: disable=g-import-not-at-top
    summary = trainer.train_and_evaluate(run.config, rdir)
    final = headline(summary) if keep is None else {k: summary.get(k) for k in keep}
    if then is not None:
      final.update(then(run, rdir))
    return final

  return execute


def with_overrides(base: ml_collections.ConfigDict,
                   overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A copy of ``base`` with dotted-key overrides (`train.config.override`).

  ``with_overrides(base, {'optimizer.learning_rate': 0.01, 'model.kwargs.width': 16})``;
  a key ``base`` lacks is a KeyError (new keys only inside ``*.kwargs``).
  """
  return config_lib.override(base, overrides)


def dotted_overrides(tree: Mapping[str, Any] | ml_collections.ConfigDict,
                     prefix: str = '') -> dict[str, Any]:
  """The dotted overrides (`with_overrides`) of an override tree.

  A study config holds what a run changes in its base trainer config as a
  tree, the trainer config's own shape (ConfigDict keys take no dots):
  ``dict(schedule=dict(name='exponential', kwargs=dict(decay_rate=0.975)))``
  is ``{'schedule.name': 'exponential', 'schedule.kwargs': {...}}``. Every
  leaf is one key, except that the ``kwargs`` of a group whose ``name`` the
  tree sets are one value: a new choice replaces the old one's options
  whole (so ``loss=train.loss('mse')`` replaces the loss group), while
  ``model=dict(kwargs=dict(projection='mlp'))`` adds one model option.
  """
  if isinstance(tree, ml_collections.ConfigDict):
    tree = tree.to_dict()
  out = {}
  for key, value in tree.items():
    if isinstance(value, ml_collections.ConfigDict):
      value = value.to_dict()
    if isinstance(value, Mapping) and not (key == 'kwargs' and 'name' in tree):
      out.update(dotted_overrides(value, f'{prefix}{key}.'))
    else:
      out[prefix + key] = value
  return out


def table(records: Mapping[str, Mapping[str, Any]],
          keys: Iterable[str]) -> list[dict[str, Any]]:
  """One row per run: name, seed, overrides and the chosen final numbers."""
  keys = tuple(keys)
  return [dict(run=name, seed=r['seed'], **r['overrides'],
               **{k: r['final'].get(k) for k in keys})
          for name, r in records.items()]
