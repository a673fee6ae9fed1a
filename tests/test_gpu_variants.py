"""The papers' ``:gpu`` variants run: every distinct trainer run, two steps on CPU.

``configs/papers/<id>.py:gpu`` holds each paper's own setting (ResNets on
CIFAR, ...). Those studies take hours on a GPU and are never executed by the
other tests, so a run that cannot even start (a model kwarg the model does
not take, a label map the data set does not have, a fine-tuning run whose
parent checkpoint does not fit) would first fail on a GPU. Here every paper's
``plan(config, workdir)`` is expanded, its trainer runs are reduced to the
DISTINCT ones (same compiled program and data pipeline: see `program_key`),
and each is trained for exactly two steps through the real
``train.train_and_evaluate`` with the real model and the real input shape:

- overrides: ``num_epochs=1``, ``batch_size = evals.batch_size = 16``, subset
  sizes capped, fine-tuning from the parent's (tiny) last checkpoint;
- data: real where ``../shared/data`` has it (MNIST, Fashion-MNIST), else a
  synthetic stand-in of the right shape, dtype and class count (CIFAR-10,
  CIFAR-100), substituted by monkeypatching ``nc_jax.data.load``; and the
  loaded training set is cut to exactly two batches (``train.input.load_data``
  wrapped), the test set to two evaluation batches.

Runs that fine-tune from another run are executed after their parent, in plan
order, with ``init.workdir`` pointing at the parent's tiny run.

One reduction from the paper's setting, printed with the run: an MLP wider than
``MAX_MLP_WIDTH`` is built at that width (p001's ``deep``, 12 x 3072: its
collapse reports of 3072-wide features took 690 s of CPU per run here; at
1024, 15 s). ``NC_JAX_GPU_VARIANTS_FULL_WIDTH=1`` lifts the cap.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
import traceback
import zlib

import ml_collections
import numpy as np
import pytest

from nc_jax import data
from nc_jax import models
from nc_jax.studies import sweep

PAPERS = ('p000_vci', 'p001_transfer', 'p002_limits', 'p003_progressive',
          'p004_fine_grained')

BATCH = 16  # Training and evaluation batch (divisible by the 8 test devices).
TRAIN_N = 2 * BATCH  # Exactly two training steps in the one epoch.
TEST_N = 2 * BATCH  # Two evaluation batches of every evaluation set.
SYNTH_CAP = 256  # Examples per synthetic split (whatever its nominal size).
PER_CLASS_CAP = 8  # data.examples_per_class, when a config sets one.
MAX_MLP_WIDTH = (10**9 if os.environ.get('NC_JAX_GPU_VARIANTS_FULL_WIDTH') == '1'
                 else 1024)

# Input shape of each data set the :gpu configs name (what the model sees).
INPUT_SHAPES = {
    'mnist': (28, 28, 1), 'fashion_mnist': (28, 28, 1),
    'cifar10': (32, 32, 3), 'cifar10_jpeg': (32, 32, 3), 'cifar100': (32, 32, 3),
}
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'cifar10': 10,
               'cifar10_jpeg': 10, 'cifar100': 100}

# Synthetic stand-ins: name -> (image shape, class names, split sizes).
SYNTHETIC = {
    'cifar10': ((32, 32, 3), data.CIFAR10_CLASSES, {'train': 50_000, 'test': 10_000}),
    'cifar100': ((32, 32, 3), data.CIFAR100_CLASSES, {'train': 50_000, 'test': 10_000}),
}

# ---------------------------------------------------------------------------
# Which runs are distinct.
# ---------------------------------------------------------------------------

# Keys (dotted) whose value selects code or shapes of the compiled step or
# the data pipeline: compared as they are (a key the config's choice does not
# take, such as SGD's nesterov under AdamW, as None).
_EXACT = ('data.name', 'data.options', 'data.loader.name', 'data.label_map',
          'data.corruption.name', 'evals.label_sets', 'model.name',
          'model.kwargs', 'init.finetune', 'init.finetune_block',
          'init.new_head', 'evals.layers', 'loss.name', 'optimizer.name',
          'optimizer.kwargs.nesterov', 'schedule.name',
          'optimizer.weight_decay_on', 'augment.flip',
          'augment.adversarial_steps', 'evals.track_collapse',
          'evals.numerical_rank', 'checkpoint.init')
# Numbers that only matter as zero / non-zero (a term, a branch, a stage of
# the pipeline); their values are constants of the same program.
_NONZERO = ('data.label_noise', 'loss.cosine_reg', 'loss.kwargs.label_smoothing',
            'augment.noise', 'augment.crop_padding', 'augment.jitter', 'augment.erase',
            'augment.adversarial_eps',
            'optimizer.weight_decay', 'optimizer.kwargs.momentum',
            'optimizer.grad_clip_norm', 'schedule.warmup_epochs',
            'stop_at_train_loss', 'data.examples_per_class', 'init.epoch')


def _get(config, key: str):
  """``config``'s value at the dotted ``key``; None where the path is absent."""
  node = config
  for part in key.split('.'):
    if part not in node:
      return None
    node = node[part]
  return node


def _frozen(v):
  if isinstance(v, ml_collections.ConfigDict):
    v = v.to_dict()
  if isinstance(v, dict):
    return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
  if isinstance(v, (list, tuple)):
    return tuple(_frozen(x) for x in v)
  return v


def program_key(config, parent_key=None) -> tuple:
  """What makes two trainer configs different programs or pipelines.

  Not: seeds, learning rates, temperatures, regulariser strengths, epochs,
  subset sizes, split slices, corruption severities, which checkpoint epoch a
  fine-tuning run starts from, evaluation sizes (constants of the same
  program, or host-side sizes). ``init.workdir`` counts through its parent's
  key.
  """
  key = [(k, _frozen(_get(config, k))) for k in _EXACT]
  key += [(k, bool(_get(config, k))) for k in _NONZERO]
  key.append(('evals.sets', tuple(sorted(
      (name, spec.get('dataset', ''), bool(spec.get('like_train')),
       spec.get('corruption', ''), spec.get('label_map'))
      for name, spec in config.evals.sets.to_dict().items()))))
  key.append(('init.workdir', parent_key))
  return tuple(key)


def is_trainer_run(run: sweep.Run) -> bool:
  return (isinstance(run.config, ml_collections.ConfigDict)
          and 'model' in run.config and 'num_epochs' in run.config)


def _is_dir_of(path: str, name: str) -> bool:
  return os.path.normpath(path).endswith(os.path.join('runs', name))


def distinct_runs(runs) -> tuple[list[sweep.Run], dict[str, str]]:
  """(the first run of every distinct program, in plan order; name -> its representative)."""
  by_name = {r.name: r for r in runs}
  keys, rep_of, chosen = {}, {}, {}
  for run in runs:
    if not is_trainer_run(run):
      continue
    parent = None
    if run.config.init.workdir:
      dep = [d for d in run.deps if _is_dir_of(run.config.init.workdir, d)]
      assert dep, (f'{run.name}: init.workdir={run.config.init.workdir} is none of its '
                   f'deps {run.deps}')
      assert is_trainer_run(by_name[dep[0]]), dep
      parent = keys[dep[0]]
    keys[run.name] = k = program_key(run.config, parent)
    if k not in chosen:
      chosen[k] = run
    rep_of[run.name] = chosen[k].name
  return list(chosen.values()), rep_of


def describe(config, parent: str = '') -> str:
  """One line: model, data, task, objective, what differs from a plain run."""
  kw = ','.join(f'{k}={v}' for k, v in sorted(config.model.kwargs.to_dict().items()))
  parts = [f'from {parent}' if parent else f'{config.model.name}({kw})', config.data.name]
  for k in ('data.label_map', 'data.corruption.name', 'init.finetune'):
    if _get(config, k):
      parts.append(f'{k}={_get(config, k)}')
  for k in ('data.label_noise', 'loss.cosine_reg', 'augment.adversarial_eps',
            'stop_at_train_loss'):
    if _get(config, k):
      parts.append(f'{k}>0')
  parts.append(f'loss={config.loss.name}')
  parts.append(f'sched={config.schedule.name}'
               + ('+warmup' if config.schedule.warmup_epochs else '')
               + ('' if config.optimizer.weight_decay else ',wd=0'))
  aug = [a for a in ('crop_padding', 'flip', 'noise', 'jitter', 'erase') if config.augment[a]]
  parts.append('aug=' + ('+'.join(aug) or 'none'))
  if config.evals.sets:
    parts.append('evals.sets=' + ','.join(sorted(config.evals.sets)))
  if config.evals.label_sets:
    parts.append('evals.label_sets=' + ','.join(config.evals.label_sets))
  return ' '.join(parts)


# ---------------------------------------------------------------------------
# Data: real where present, synthetic stand-ins, two batches.
# ---------------------------------------------------------------------------


def _split_size(split: str, sizes: dict[str, int]) -> int:
  """Examples in ``split`` (``'train'``, ``'train[25000:35000]'``, ...)."""
  base, _, rest = split.partition('[')
  n = sizes[base]
  if rest:
    lo, _, hi = rest.rstrip(']').partition(':')
    n = len(range(n)[slice(int(lo) if lo else None, int(hi) if hi else None)])
  return n


def synthetic(name: str, split: str) -> data.Dataset:
  """A stand-in for ``data.load(name, split)``: uint8 NHWC, every class present."""
  shape, class_names, sizes = SYNTHETIC[name]
  n = min(_split_size(split, sizes), SYNTH_CAP)
  c = len(class_names)
  rng = np.random.default_rng(zlib.crc32(f'{name}/{split}'.encode()))
  labels = rng.permutation(np.arange(n) % c).astype(np.int32)
  images = rng.integers(0, 256, (n,) + shape, dtype=np.uint8)
  extra = {}
  if name == 'cifar100':
    extra = dict(coarse_labels=data.CIFAR100_FINE_TO_COARSE[labels],
                 coarse_class_names=data.CIFAR100_SUPERCLASSES)
  return data.Dataset(images, labels, c, class_names, name=name, split=split, **extra)


def _tiny(ds: data.Dataset, n: int) -> data.Dataset:
  """A fixed subset of ``n`` examples (the same for the same data set)."""
  if len(ds) <= n:
    return ds
  idx = np.sort(np.random.default_rng(0).permutation(len(ds))[:n])
  return ds.subset(idx)


@pytest.fixture
def tiny_data(monkeypatch):
  """Patches the data layer; returns the list of substituted (name, split)."""
  from nc_jax.train import input as input_lib  # pylint: disable=g-import-not-at-top
  real_load = data.load
  substituted = []

  def load(name, split='train', **kwargs):
    try:
      return real_load(name, split, **kwargs)
    except data.DatasetNotFoundError:
      if name.lower() not in SYNTHETIC:
        raise
      substituted.append((name, split))
      return synthetic(name.lower(), split)

  # Every module that holds the entry point (`data.load`, or imported by name).
  for mod in list(sys.modules.values()):
    if (getattr(mod, '__name__', '').startswith('nc_jax')
        and getattr(mod, 'load', None) is real_load):
      monkeypatch.setattr(mod, 'load', load)

  real_load_data = input_lib.load_data

  def load_data(config, **kwargs):
    train, test = real_load_data(config, **kwargs)
    assert len(train) >= TRAIN_N, (
        f'{len(train)} training examples after the config\'s subsets; the test '
        f'needs {TRAIN_N}')
    return _tiny(train, TRAIN_N), _tiny(test, TEST_N)

  monkeypatch.setattr(input_lib, 'load_data', load_data)
  return substituted


# ---------------------------------------------------------------------------
# Expectations from the config alone.
# ---------------------------------------------------------------------------


def expected_classes(config) -> int:
  c = NUM_CLASSES[config.data.name]
  for part in filter(None, config.data.label_map.split('|')):
    kind, _, arg = part.partition(':')
    if kind == 'classes':
      c = len(arg.split(','))
    elif kind == 'mod':
      c = int(arg)
    elif kind == 'table':
      c = max(int(t) for t in arg.split(',')) + 1
    elif kind == 'superclass':
      c = len(data.SUPERCLASS_MAPS[arg][1])
    elif kind == 'split':
      c *= int(arg)
  return c


def expected_features(model: str, kwargs: dict) -> dict[str, int]:
  """{feature name: width} the architecture declares (encoder + head layers)."""
  kwargs = dict(kwargs)
  if model.startswith('resnet'):
    depth = int(model[len('resnet'):])
    w = kwargs.get('width', 64)
    names = models.resnet.resnet_feature_names(depth)
    exp = 4 if depth >= 50 else 1
    dims = {'stem': w}
    _, stages = models.resnet.RESNET_SPECS[depth]
    for s, n in enumerate(stages):
      for b in range(n):
        dims[f'layer{s + 1}.{b}'] = w * 2**s * exp
    dims['penultimate'] = dims.pop(f'layer4.{stages[-1] - 1}')
    assert tuple(dims) == names
  elif model == 'vgg11_bn':
    w = kwargs.get('width', 64)
    chans = [c for c in models.vgg.VGG_CONFIGS['vgg11'] if c != 'M']
    names = models.vgg.vgg_feature_names('vgg11')
    dims = {n: c * w // 64 for n, c in zip(names, chans)}
    dims['penultimate'] = chans[-1] * w // 64  # The last conv, pooled.
  elif model == 'mlp':
    names = models.mlp.mlp_feature_names(kwargs.get('depth', 3))
    dims = {n: kwargs.get('width', 512) for n in names}
  else:
    pytest.fail(f'no expected feature layout for model {model!r}: add one to this test')
  p = dims['penultimate']
  if kwargs.get('head_depth'):
    dims['pre_head'] = dims.pop('penultimate')
    for i in range(1, kwargs['head_depth']):
      dims[f'head{i}'] = p
    dims['penultimate'] = p
  if kwargs.get('projection'):
    dims['projection'] = None  # Its width is the head's choice.
  return dims


def _num(v) -> float:
  return float(v)  # Also 'nan' / 'inf' / '-inf'.


def check_run(name: str, config, rdir: str, parent_config=None) -> str:
  """Asserts what a two-step run must show; returns a one-line summary."""
  with open(os.path.join(rdir, 'model.json')) as f:
    info = json.load(f)
  with open(os.path.join(rdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f if line.strip()]
  with open(os.path.join(rdir, 'summary.json')) as f:
    summary = json.load(f)
  arch = parent_config or config
  assert tuple(info['input_shape']) == INPUT_SHAPES[config.data.name], (
      name, info['input_shape'])
  assert tuple(info['input_shape']) == INPUT_SHAPES[arch.data.name], (
      f'{name}: fine-tunes a model of input {INPUT_SHAPES[arch.data.name]} on '
      f'{info["input_shape"]}')
  assert info['num_classes'] == expected_classes(config), (name, info['num_classes'])
  want = expected_features(arch.model.name, arch.model.kwargs.to_dict())
  got = info['feature_dims']
  if config.init.finetune == 'scl':  # The encoder and its skip; no head layers.
    want = {k: v for k, v in want.items() if not k.startswith(('head', 'pre_head'))}
    if 'pre_head' in got:
      want['pre_head'] = got['pre_head']
  assert set(got) == set(want), (name, sorted(got), sorted(want))
  for k, v in want.items():
    if v is not None:
      assert got[k] == v, (name, k, got[k], v)
  # Exactly two steps, finite numbers, every tracked layer evaluated.
  train_recs = [r for r in records if 'running_loss' in r]
  assert len(train_recs) == 1 and train_recs[0]['step'] == 2, (name, train_recs)
  assert math.isfinite(_num(train_recs[0]['running_loss'])), (name, train_recs)
  for epoch in (0, 1):
    evals = [r for r in records if r.get('split') and r.get('epoch') == epoch]
    for split in ('train', 'test', *config.evals.sets.keys()):
      pen = [r for r in evals if r['split'] == split and r['layer'] == 'penultimate'
             and 'labels' not in r]
      assert len(pen) == 1, (name, epoch, split, len(pen))
      # Workdir writes non-finite numbers as strings ('nan', 'inf').
      loss = _num(pen[0]['loss'])
      assert math.isfinite(loss), (
          f'{name}: evaluation loss on {split} {loss} after {2 * epoch} training '
          f'steps: the run diverged; running training loss {train_recs[0]["running_loss"]}, '
          f'gradient norm {train_recs[0].get("l2_grads")}')
      assert 0.0 <= pen[0]['accuracy'] <= 1.0
  layers = {r['layer'] for r in evals if r['split'] == 'train' and 'labels' not in r}
  if config.evals.track_collapse:  # () = every layer of the model.
    tracked = set(config.evals.layers) or set(got)
  else:  # Accuracy and loss only, recorded at 'penultimate'.
    tracked = set()
  tracked.add('penultimate')
  assert layers == tracked, (f'{name}: layers evaluated but not tracked '
                             f'{sorted(layers - tracked)}, tracked but not evaluated '
                             f'{sorted(tracked - layers)}')
  for label_set in config.evals.label_sets:
    assert any(r.get('labels') == label_set for r in evals), (name, label_set)
  assert summary, name
  return (f"loss {train_recs[0]['running_loss']:.3g}, input {tuple(info['input_shape'])}, "
          f"C={info['num_classes']}, penultimate {got['penultimate']}, {len(got)} layers")


# ---------------------------------------------------------------------------
# The test.
# ---------------------------------------------------------------------------


def tiny_overrides(config, parent_dir: str | None) -> dict:
  """Dotted overrides that make ``config`` a two-step run (from ``parent_dir``)."""
  over = {'num_epochs': 1, 'batch_size': BATCH, 'evals.batch_size': BATCH,
          'log.progress_bar': False, 'on_config_change': 'error'}
  per_class = config.data.examples_per_class
  if per_class:  # Enough for two batches, whatever C.
    cap = max(PER_CLASS_CAP, -(-TRAIN_N // expected_classes(config)))
    over['data.examples_per_class'] = min(per_class, cap)
  if config.model.name == 'mlp' and config.model.kwargs.get('width', 0) > MAX_MLP_WIDTH:
    over['model.kwargs.width'] = MAX_MLP_WIDTH
  if parent_dir is not None:
    over['init.workdir'] = parent_dir
    if config.init.epoch:
      over['init.epoch'] = 1  # The parent's last (only) epoch.
  for name in config.evals.sets:
    over[f'evals.sets.{name}.examples'] = TEST_N
  return over


def _with(config, over: dict):
  """A copy of ``config`` with dotted overrides (new leaves allowed: an eval set's
  ``examples``)."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in over.items():
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      node = node[p]
    with node.unlocked():
      node[leaf] = value
  return config


# About 14 minutes on a 2-core CPU for the 37 distinct runs: above CI's
# budget, so it runs on demand (before a GPU launch, or after a change to a
# :gpu config or the trainer): NC_JAX_GPU_VARIANTS=1 bash scripts/test.sh -k gpu_variant
_ON_DEMAND = pytest.mark.skipif(
    os.environ.get('NC_JAX_GPU_VARIANTS') != '1',
    reason='the :gpu smoke test takes ~14 min on 2 cores; set NC_JAX_GPU_VARIANTS=1 to run it')
# Found by this test (synthetic CIFAR-100 pixels): p001's :gpu MSE runs
# (ResNet-18, lr 0.1) reached a NaN loss within two steps (loss ~2e4, gradient
# norm ~3e4; finite at lr 0.01). Since paper 001's second pass (issue 23) the
# MSE runs train at the rate a rule picks from pilots (planned at the grid's
# smallest, 0.003); a pilot that diverges is recorded, not a failure.


@pytest.mark.slow
@_ON_DEMAND
@pytest.mark.parametrize('paper', PAPERS)
def test_gpu_variant_trains(paper, tmp_path, tiny_data, capsys):
  import jax  # pylint: disable=g-import-not-at-top
  from nc_jax import train  # pylint: disable=g-import-not-at-top
  from nc_jax.train import input as input_lib  # pylint: disable=g-import-not-at-top
  # One device, as the :gpu studies run (one GPU). The suite's 8 fake CPU
  # devices would run every replicated computation (the collapse reports)
  # 8 times over on the 2 cores: 3x the CPU time of a run.
  mesh = input_lib.make_mesh(jax.devices()[:1])
  config = importlib.import_module(f'configs.papers.{paper}').get_config('gpu')
  assert config.variant == 'gpu'
  workdir = str(tmp_path / 'study')
  runs = importlib.import_module(f'nc_jax.studies.papers.{paper}').plan(config, workdir)
  todo, rep_of = distinct_runs(runs)

  def say(line):
    with capsys.disabled():  # As it happens: a slow run shows where it is.
      print(line, flush=True)

  say(f'\n{paper}: {sum(map(is_trainer_run, runs))} trainer runs of {len(runs)}, '
      f'{len(todo)} distinct (xN: the plan\'s runs each stands for)')
  t_paper = time.perf_counter()
  failures = []
  done = {}  # representative name -> (its tiny run's folder, its config)
  for run in todo:
    parent = parent_name = parent_dir = None
    if run.config.init.workdir:
      dep = next(d for d in run.deps if _is_dir_of(run.config.init.workdir, d))
      parent_name = rep_of[dep]
      if parent_name not in done:
        failures.append(f'{run.name}: its parent {dep} did not run')
        say(f'  [SKIPPED] {run.name}: its parent {dep} did not run')
        continue
      parent_dir, parent = done[parent_name]
    over = tiny_overrides(run.config, parent_dir)
    cfg = _with(run.config, over)
    shrunk = (f' [CPU: MLP width {run.config.model.kwargs.width} -> {MAX_MLP_WIDTH}]'
              if 'model.kwargs.width' in over else '')
    rdir = sweep.run_dir(workdir, run.name)
    n_same = sum(1 for v in rep_of.values() if v == run.name)
    t, cpu = time.perf_counter(), time.process_time()
    try:
      train.train_and_evaluate(cfg, rdir, mesh=mesh)
      done[run.name] = (rdir, cfg)  # Trained: its checkpoint can start a child.
      note = check_run(run.name, cfg, rdir, parent)
      status = 'ok'
    except FloatingPointError as err:
      if run.tags.get('kind') != 'lr_rule':
        raise
      # A learning-rate rule's pilot may diverge: that is what the rule reads
      # (p001's MSE pilots at lr 0.1); the study records it, it does not fail.
      status, note = 'ok', f'diverged, as a rule pilot may: {str(err)[:80]}'
    except Exception as err:  # pylint: disable=broad-except
      tb = traceback.extract_tb(err.__traceback__)[-1]
      note = (f'{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}'[:300]
              + f' [{os.path.relpath(tb.filename)}:{tb.lineno}]')
      status = 'FAILED'
      failures.append(f'{run.name} ({describe(run.config, parent_name)}): {note}')
    say(f'  [{status} {time.perf_counter() - t:5.1f}s, cpu {time.process_time() - cpu:5.1f}s] '
        f'{run.name} (x{n_same}) {describe(run.config, parent_name)}{shrunk}: {note}')
  say(f'{paper}: {time.perf_counter() - t_paper:.1f}s; synthetic data for '
      f'{sorted(set(n for n, _ in tiny_data)) or "nothing"}')
  assert not failures, '\n'.join(failures)
