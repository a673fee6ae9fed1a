"""Paper 003: "Generalization, Robustness and Adaptability of Progressive Neural
Collapse" — claims 003a-003d as one study.

Runs (``configs/papers/p003_progressive.py``), every one a trainer run
(`sweep.train`) that records, per layer, CDNV and NC2 on the training images
at the last epoch and at initialisation (epoch 0), read from the run's
records (`RunDir`), with its final train / test accuracy and train loss.
Each run is tagged; the claims select runs by their tags
(`reproduce.Study.where`), never by name. One run per seed of
``config.seeds`` in every group:

- ``depth<d>_seed<s>`` / ``depth_<model>_seed<s>`` (003a; tags ``kind='depth'``,
  ``group``, ``model``, ``depth``): one model family at several depths;
  afterwards a linear probe on every layer's frozen features.
- ``noise<r>_seed<s>`` (003b; ``kind='label_noise'``, ``label_noise=r``):
  symmetric label noise; the trainer measures CDNV against the noisy training
  labels and, on the same features, against the clean labels
  (``evals.label_sets=('clean',)``); the memorization ratio is their quotient
  (SPEC.md).
- ``corrupt<v>_seed<s>`` (003c; ``kind='corruption'``, ``severity=v``): trained
  on corrupted inputs; CDNV on the corrupted training images and on the same
  images clean (``evals.sets.train_clean``, ``like_train=True``).
- ``source_<name>_seed<s>`` (003d; ``kind='source'``, ``source=name``): models
  trained on different source domains (the same labels, different input
  distributions); CDNV of each layer on the target domain
  (``evals.sets.target``) and a linear probe on the target with little target
  data.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: its evidence (per-seed
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
from nc_jax.studies.papers.p003_progressive.domain import domain_replicates
from nc_jax.studies.papers.p003_progressive.gates import (CDNV_COLLAPSE_MAX, TEST_ACC_MIN,
                                                          TRAIN_ACC_MIN)
from nc_jax.studies.papers.p003_progressive.runs import analysis, plan

PAPER = '003'
TITLE = 'Generalization, Robustness and Adaptability of Progressive Neural Collapse'

__all__ = ['CDNV_COLLAPSE_MAX', 'CLAIMS', 'PAPER', 'TEST_ACC_MIN', 'TITLE', 'TRAIN_ACC_MIN',
           'analysis', 'domain_replicates', 'plan']
