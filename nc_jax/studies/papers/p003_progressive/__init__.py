"""Paper 003: "Generalization, Robustness and Adaptability of Progressive Neural
Collapse" — claims 003a-003d as one study.

Runs (``configs/papers/p003_progressive.py``), every one a trainer run
(`sweep.train`) that records, per layer, CDNV and NC2 on the training images
at the last epoch and at initialisation (epoch 0), read from the run's
records (`RunDir`), with its final train / test accuracy and train loss.
Each run is tagged; the claims select runs by their tags
(`reproduce.Study.where`), never by name. One run per seed of
``config.seeds`` in every group:

- ``depth_<model>_seed<s>`` / ``depth<d>_seed<s>`` (003a; tags ``kind='depth'``,
  ``group``, ``family``, ``model``, ``depth``): ResNets of one family
  (``config.resnet``, judged) and MLPs at several depths (``config.base``,
  the per-layer-law control, which also evaluate the clean labels and so are
  003b's noise-free runs); afterwards a linear probe on every layer's frozen
  features.
- ``noise<r>_<net>_seed<s>`` (003b; ``kind='label_noise'``, ``net``,
  ``label_noise=r``): symmetric label noise at each MLP depth of
  ``config.noise_depths``; the trainer measures CDNV against the noisy
  training labels and, on the same features, against the clean labels
  (``evals.label_sets=('clean',)``); the memorization ratio is their quotient
  (SPEC.md). `runs.noise_runs` finds a net's runs at a rate.
- ``corrupt<v>_seed<s>`` (003c; ``kind='corruption'``, ``severity=v``): trained
  on corrupted inputs; CDNV on the corrupted training images and on the same
  images clean (``evals.sets.train_clean``, ``like_train=True``).
- ``source_<name>_seed<s>`` (003d; ``kind='source'``, ``source=name``): models
  trained on different source domains (the same labels, different input
  distributions: `data.DOMAIN_SHIFT_LEVELS`); CDNV of each layer on the
  target domain (``evals.sets.target``, ``config.target``) and a linear
  probe on the target with little target data.

`HISTORY` says what changed since the first pass. Each claim is a
`reproduce.ClaimSpec` in `CLAIMS`: its evidence (per-seed
values and their `spread.summary`), gates (every run read trained, the
collapse happened, a change measured against initialisation, >= 3 seeds) and
checks (differences and trends through `spread`, so a difference counts only
beyond 2 SE of its seed noise). Thresholds are the claims' ``constants``,
fixed before the run; the criterion sentences are formatted from them; the
setting sentences are composed from `settings`.

Modules: `runs` (`plan`: the runs and what each records), `evidence` and
`gates` (shared by the claims), `depth` (003a), `noise` (003b, 003c),
`domain` (003d), `setting` (the "what we ran" sentences), `claims`
(`CLAIMS`).

References: paper 003 secs 3-4, Figs 1-3, 6, 9, Def 1; SPEC.md "Layers and
noise (003)".
"""

from nc_jax.studies.papers.p003_progressive.claims import CLAIMS
from nc_jax.studies.papers.p003_progressive.depth import plateau_ratio
from nc_jax.studies.papers.p003_progressive.domain import domain_replicates, seed_spread_last
from nc_jax.studies.papers.p003_progressive.gates import (CDNV_COLLAPSE_MAX, TEST_ACC_MIN,
                                                          TRAIN_ACC_MIN)
from nc_jax.studies.papers.p003_progressive.runs import analysis, plan

PAPER = '003'
HISTORY = """\
The first pass (results committed in ef58917) was rerun under the gates (issue 25). What changed,
and why:

- **003a is judged on ResNets.** The paper's headline is the plateau in deep ResNets: an early
  fall of CDNV, a plateau through the middle blocks, a renewed fall at the end. The first pass's
  MLPs fell geometrically, the per-layer law the paper contrasts itself with, and the plateau was
  never tested. Now ResNet-18 and ResNet-34 (width 16) on the CIFAR-10 JPEG copy, every block
  tracked, are judged: CDNV and NC2 fall through the blocks; the probe's gain from the stem to
  the last block exceeds 3 SE; a plateau test on ResNet-34 (the middle third of its blocks
  collapses less than half as fast per block as the last third); the depth-gain check. The MLP
  depth sweep is kept as the control, measured the same way (its plateau ratio says what a
  geometric fall gives) and not judged. Probes use every test image (image folders are sorted by
  class: a slice of them would hold one class).
- **003b at depths 3, 6 and 9**, each judged ("regardless of network size"), with the gate that at
  every depth some layer's ratio exceeds 1 by 2 SE (else the location check is vacuous there).
  The noise-free runs are 003a's MLPs, which also evaluate the clean labels (the same training).
- **003c**: 3 seeds per severity; a layer memorizes only when its seed-mean ratio exceeds 1 by more
  than 2 SE, the same rule for label noise at the same depth (the first pass counted a layer at
  ratios 1.010 and 1.026 of one seed).
- **003d with real domains.** The first pass's sources (MNIST clean, noisy, blurred) were one
  domain, and its pooled Spearman (-0.94) came from the layer index. Now the sources are MNIST as
  it is, inverted, rotated by 90 degrees, and max-composited on CIFAR-10 patches (new `corrupt`
  kinds, tested), the target the scikit-learn digits framed as MNIST, 3 seeds per source. The
  spread across sources must grow from the first layer to the last and exceed the within-source
  seed spread there, and target collapse must predict the probe across sources within a layer
  (the pooled Spearman is reported, not judged).
- **:gpu**: 003c's clean CDNV now reads the same training images as the corrupted one
  (`evals.sets` with ``like_train`` takes ``evals.train_examples``' subset); 003d's MNIST-style
  sources are never flipped and the text no longer calls them the paper's setting.
"""
TITLE = 'Generalization, Robustness and Adaptability of Progressive Neural Collapse'

__all__ = ['CDNV_COLLAPSE_MAX', 'CLAIMS', 'HISTORY', 'PAPER', 'TEST_ACC_MIN', 'TITLE', 'TRAIN_ACC_MIN',
           'analysis', 'domain_replicates', 'plan', 'plateau_ratio', 'seed_spread_last']
