"""What a trainer config runs, in words: the "What we ran" sentence of a claim.

REPRODUCTIONS.md asks every claim to say what we ran instead of the paper's
setting. The sentence is computed from the variant's config (never written
by hand next to it), so a ``:runlocal`` report describes the 3-epoch run it
made, not the plain study. Each piece takes a trainer config
(`nc_jax.train.default_config`'s groups: ``data``, ``model``, ``optimizer``,
``schedule``, ``loss``, ``augment``, ``evals``, ``init``). Paper modules
compose these pieces:

    settings.trainer(config.pretrain) + ', ' + settings.seeds(config.seeds)
    -> 'MLP 3 x 1024 (ReLU, batch norm) on MNIST, 100 training images per class;
        SGD (momentum 0.9), lr 0.01, cosine schedule, weight decay 5e-4,
        batch 128, 300 epochs; seeds 0, 1, 2'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DATA_NAMES = {
    'mnist': 'MNIST', 'fashion_mnist': 'Fashion-MNIST', 'kmnist': 'KMNIST',
    'cifar10': 'CIFAR-10', 'cifar10_jpeg': 'CIFAR-10 (JPEG copy)', 'cifar100': 'CIFAR-100',
    'digits': 'scikit-learn digits', 'mnist1d': 'MNIST-1D', 'imagenette': 'Imagenette',
}
MODEL_NAMES = {
    'resnet18': 'ResNet-18', 'resnet34': 'ResNet-34', 'resnet50': 'ResNet-50',
    'vgg11_bn': 'VGG-11-BN', 'vit_tiny': 'ViT-Tiny', 'deit_tiny': 'DeiT-Tiny',
}
NORMS = {'batch': 'batch norm', 'layer': 'layer norm', '': 'no normalisation',
         None: 'no normalisation', 'none': 'no normalisation'}
_SLICE = re.compile(r'^\w+\[(?P<start>\d*):(?P<stop>\d*)\]$')


def number(n: int | float) -> str:
  """1000 -> '1,000'; 0.0005 -> '0.0005'."""
  return f'{n:,}' if isinstance(n, int) else f'{n:g}'


def seeds(values: Iterable[int]) -> str:
  """(0, 1, 2) -> 'seeds 0, 1, 2'; (0,) -> 'seed 0'."""
  values = list(values)
  return f"seed{'s' if len(values) != 1 else ''} {', '.join(str(s) for s in values)}"


def epochs(n: int) -> str:
  return f"{n:,} epoch{'s' if n != 1 else ''}"


def model(t) -> str:
  """The network: 'MLP 3 x 1024 (ReLU, batch norm)', 'ResNet-18 (width 16)'."""
  name, kw = t.model.name, dict(t.model.kwargs)
  if name == 'mlp':
    head = f", head depth {kw['head_depth']}" if kw.get('head_depth') else ''
    return (f"MLP {kw.get('depth')} x {kw.get('width')} "
            f"(ReLU, {NORMS.get(kw.get('norm'), kw.get('norm'))}{head})")
  extra = ', '.join(f"{k.replace('_', ' ')} {v}" for k, v in kw.items())
  return MODEL_NAMES.get(name, name) + (f' ({extra})' if extra else '')


def _slice(split: str) -> tuple[int, int | None] | None:
  """(start, stop) of a sliced split ('test[5000:]': (5000, None)); None if not sliced."""
  m = _SLICE.match(split or '')
  if not m or not (m['start'] or m['stop']):
    return None
  return int(m['start'] or 0), int(m['stop']) if m['stop'] else None


def images(split: str, what: str) -> str:
  """'train[:1000]' -> 'the first 1,000 training images'; 'test[5000:]' -> 'the test
  images from index 5,000 on'; 'test' -> 'the full test split'."""
  s = _slice(split)
  if s is None:
    return f'the full {what} split'
  start, stop = s
  if stop is None:
    return f'the {what} images from index {start:,} on'
  return (f'the first {stop - start:,} {what} images' if start == 0 else
          f'{stop - start:,} {what} images (indices {start:,}-{stop - 1:,})')


def labels(t) -> str:
  """What the labels are: '', 'labels y mod 5', 'classes 0, 1, 2', '40% label noise'."""
  parts = []
  d = t.data
  kind, _, arg = (d.label_map or '').partition(':')
  if kind == 'mod':
    parts.append(f'coarse labels y mod {arg}')
  elif kind == 'table':
    table = [int(c) for c in arg.split(',')]
    pairs = ', '.join('/'.join(str(f) for f, c in enumerate(table) if c == k)
                      for k in range(max(table) + 1))
    parts.append(f'coarse labels grouping classes {pairs}')
  elif kind == 'split':
    parts.append(f'fine labels (each class split at random into {arg})')
  elif kind == 'classes':
    parts.append(f"classes {arg.replace(',', ', ')}")
  elif kind:
    parts.append(f'labels {d.label_map}')
  if d.label_noise:
    parts.append(f'{d.label_noise:.0%} label noise')
  return ', '.join(parts)


def data(t) -> str:
  """The training data: 'MNIST, 100 training images per class (labels y mod 5)'."""
  d = t.data
  text = DATA_NAMES.get(d.name, d.name)
  if d.corruption.name:
    text += (f" with {d.corruption.name.replace('_', ' ')} "
             f'(severity {d.corruption.severity})')
  if d.examples_per_class:
    text += f', {d.examples_per_class:,} training images per class'
    if _slice(d.train_split) is not None:
      text += f" of {images(d.train_split, 'training')}"
  else:
    text += f", {images(d.train_split, 'training')}"
  extra = labels(t)
  return text + (f' ({extra})' if extra else '')


def augmentation(t) -> str:
  """'crop (padding 4), flip' or 'no augmentation'."""
  a = t.augment
  parts = [f'crop (padding {a.crop_padding})'] if a.crop_padding else []
  parts += ['flip'] if a.flip else []
  parts += [f'pixel noise {a.noise:g}'] if a.noise else []
  parts += [f'brightness/contrast jitter {a.jitter:g}'] if a.get('jitter') else []
  parts += [f'random erasing (p {a.erase:g})'] if a.get('erase') else []
  if a.adversarial_eps:
    parts.append(f'adversarial training (eps {a.adversarial_eps:g}, '
                 f'{a.adversarial_steps} step{"s" if a.adversarial_steps != 1 else ""})')
  return ', '.join(parts) or 'no augmentation'


def optimizer(t) -> str:
  """'SGD (momentum 0.9), lr 0.05, cosine schedule, weight decay 5e-4, batch 128, 30 epochs'.

  The optimiser's own options beyond SGD's momentum and Nesterov flag (AdamW's
  b1, b2) are left out, as is the SupCon temperature (a study states it).
  """
  o, s, l = t.optimizer, t.schedule, t.loss
  if o.name == 'sgd':
    momentum = o.kwargs.get('momentum')
    opt = ('Nesterov SGD' if o.kwargs.get('nesterov') else 'SGD') + (
        f' (momentum {momentum:g})' if momentum else '')
  else:
    opt = {'adamw': 'AdamW', 'adam': 'Adam'}.get(o.name, o.name)
  warm = (f", warm-up {s.warmup_epochs:g} epoch{'s' if s.warmup_epochs != 1 else ''}"
          if s.warmup_epochs else '')
  stop = (f', stopped when the running training loss falls below {t.stop_at_train_loss:g} '
          f'(at most {epochs(t.num_epochs)})' if t.stop_at_train_loss
          else f', {epochs(t.num_epochs)}')
  loss = '' if l.name == 'ce' else f', {l.name} loss'
  tau = l.kwargs.get('temperature', 1.0) if l.name == 'ce' else 1.0
  temp = f', softmax temperature {tau:g}' if tau != 1.0 else ''
  reg = f', cosine regulariser {l.cosine_reg:g}' if l.cosine_reg else ''
  return (f'{opt}, lr {o.learning_rate:g}{warm}, {s.name} schedule, weight decay '
          f'{o.weight_decay:g}, batch {t.batch_size}{stop}{loss}{temp}{reg}')


def test_data(t) -> str:
  """The test images the run evaluates on."""
  if t.evals.test_examples:
    return f'{t.evals.test_examples:,} test images'
  return images(t.data.test_split, 'test')


def finetuning(t) -> str:
  """'' for pretraining; else how the run starts from another run."""
  i = t.init
  if not i.workdir:
    return ''
  what = i.finetune or 'full'
  block = f' (from {i.finetune_block})' if i.finetune_block else ''
  return f'fine-tuned ({what}{block}) from epoch {i.epoch} of a pretraining'


def trainer(t, *, with_augmentation: bool = True) -> str:
  """A trainer config in one sentence: model on data; optimiser, schedule, length."""
  parts = [f'{model(t)} on {data(t)}', optimizer(t)]
  if with_augmentation:
    parts.append(augmentation(t))
  ft = finetuning(t)
  return '; '.join(parts) + (f'; {ft}' if ft else '')


def grid(values: Mapping[str, Iterable[Any]]) -> str:
  """{'lr': (0.1, 0.01)} -> 'lr in {0.1, 0.01}'."""
  return '; '.join(f"{k} in {{{', '.join(number(v) for v in vs)}}}" for k, vs in values.items())
