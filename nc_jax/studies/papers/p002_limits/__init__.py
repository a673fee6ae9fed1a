"""Paper 002: "Limitations of Neural Collapse for Understanding Generalization in
Deep Learning" (Hui, Belkin, Nakkiran) — claims 002a-002d as one study.

Runs (``configs/papers/p002_limits.py``; `plan`), selected by their tags:

- ``kind='cascade'`` (002a, 002d; one run per seed of ``cascade_seeds``):
  the paper's 3 x 1024 MLP on 1,000 MNIST images, checkpointed along
  training from initialisation; afterwards, at every checkpoint, the train
  variance with the current class means and with the final model's means
  (the paper's definition), the strong test variance and the weak test
  variance (k-means on the test features), at every hidden layer.
- ``kind='size', train_size=n`` (002b; ``size_seeds`` per size): one run
  per train-set size, each stopped when its training loss falls below
  ``stop_at_train_loss``.
- ``kind='pretrain', group=g`` then ``kind='finetune', group=g,
  init_epoch=e, learning_rate=lr`` (002c; one chain per seed of the group's
  ``seeds``): pretraining on MNIST parity labels, then every checkpoint
  (``init.epoch``) fine-tuned (all layers, a new 10-class head) on 500 new
  images for each learning rate (``optimizer.learning_rate``) of a sweep,
  with the pretraining's seed; the learning rate is chosen on 100 held-out
  validation images, and the test accuracy of that choice is set against the
  checkpoint's train variance.

Train variance (SPEC.md ``train_variance`` = ``squared_distance`` on train
features) is measured with the current model's class means (what the trainer
records) and, as paper 002 sec 3.1 defines it, with the class means of the
final model: E||h_t(x) - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2. Each figure
says which it uses.

Each claim is a `reproduce.ClaimSpec` (`CLAIMS`): evidence read through the
runs' tags (per-seed values as `spread.quantity`), gates (every run trained,
the train collapse the paper's claims presuppose happened, >= 3 seeds, the
fall measured against the untrained network), checks (every comparison
between seed groups through `spread.exceeds`), a criterion written over the
same constants. The check thresholds (``gap_min`` ... ``transfer_rho_min``)
were fixed before the first run; the gates' thresholds (`TRAIN_ACCURACY_MIN`,
`TEST_ACCURACY_MIN`, `COLLAPSE_MAX`) before the first run under gates.

Modules: `runs` (`plan`: the runs and their analyses), `criteria` (the
thresholds and the gates the claims share), `cascade` (002a, 002d), `sizes`
(002b), `transfer` (002c), `setting` (the "what we ran" sentences), `claims`
(`CLAIMS`).

References: paper 002 secs 3-5, Figs 2-6; SPEC.md lines 50-52.
"""

from nc_jax.studies.papers.p002_limits.claims import CLAIMS
from nc_jax.studies.papers.p002_limits.criteria import (COLLAPSE_MAX, CRITERIA,
                                                        TEST_ACCURACY_MIN,
                                                        TRAIN_ACCURACY_MIN)
from nc_jax.studies.papers.p002_limits.runs import final_means_variance, plan

PAPER = '002'
TITLE = 'Limitations of Neural Collapse for Understanding Generalization in Deep Learning'

__all__ = ['CLAIMS', 'COLLAPSE_MAX', 'CRITERIA', 'PAPER', 'TEST_ACCURACY_MIN', 'TITLE',
           'TRAIN_ACCURACY_MIN', 'final_means_variance', 'plan']
