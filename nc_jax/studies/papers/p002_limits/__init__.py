"""Paper 002: "Limitations of Neural Collapse for Understanding Generalization in
Deep Learning" (Hui, Belkin, Nakkiran) — claims 002a-002d as one study.

Runs (``configs/papers/p002_limits.py``; `plan`), selected by their tags:

- ``kind='prestudy', setting=name`` (every claim's premise): each candidate
  setting of ``prestudy.candidates`` once at ``prestudy.seed``; its record
  is the train collapse alone (final train accuracy, the last hidden
  layer's train variance when first fitted and at the end). `choose` is the
  rule that picks the study's setting from them.
- ``kind='cascade'`` (002a, 002d; one run per seed of ``cascade_seeds``):
  the paper's 3 x 1024 MLP on 1,000 MNIST images, checkpointed along
  training from initialisation; afterwards, at every checkpoint, the train
  variance with the current class means and with the final model's means
  (the paper's definition), the strong and weak test variances (test class
  means, k-means centres; each also around the final model's), at every
  hidden layer; and, from the evaluation records, every layer's train
  variance at every evaluation.
- ``kind='size', train_size=n`` (002b; ``size_seeds`` per size): one run
  per train-set size, every size seeing ``size_images_seen`` images.
- ``kind='pretrain', group=g`` then ``kind='finetune', group=g,
  init_epoch=e, learning_rate=lr`` (002c; one chain per seed of the group's
  ``seeds``): pretraining on MNIST parity labels, then every checkpoint
  (``init.epoch``) fine-tuned (all layers, a new 10-class head) on 500 new
  images for each learning rate (``optimizer.learning_rate``) of a sweep,
  with the pretraining's seed; the learning rate is chosen on 100 held-out
  validation images, and the test accuracy of that choice is set against the
  checkpoint's train variance. Beside it, a linear probe of each checkpoint's
  frozen features on the same fine-tuning images.

Train variance (SPEC.md ``train_variance`` = ``squared_distance`` on train
features) is measured with the current model's class means (what the trainer
records) and, as paper 002 sec 3.1 defines it, with the class means of the
final model: E||h_t(x) - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2. Each figure
says which it uses.

Each claim is a `reproduce.ClaimSpec` (`CLAIMS`): evidence read through the
runs' tags (per-seed values as `spread.quantity`), gates (the setting is the
pre-study's choice, every run trained, the train collapse the paper's claims
presuppose happened, >= 3 seeds, the fall measured against the untrained
network), checks (every comparison between seed groups through
`spread.exceeds`), a criterion written over the same constants, all fixed
before the runs they judge (`criteria`). `HISTORY`: what changed since the
first pass.

Modules: `runs` (`plan`: the runs and their analyses), `criteria` (the
thresholds and the gates the claims share), `cascade` (002a, 002d), `sizes`
(002b), `transfer` (002c), `setting` (the "what we ran" sentences), `claims`
(`CLAIMS`).

References: paper 002 secs 3-5, Figs 2-6; SPEC.md lines 50-52.
"""

from nc_jax.studies.papers.p002_limits.claims import CLAIMS
from nc_jax.studies.papers.p002_limits.criteria import (COLLAPSE_FALL, COLLAPSE_MAX,
                                                        CRITERIA, TEST_ACCURACY_MIN,
                                                        TRAIN_ACCURACY_MIN, choose)
from nc_jax.studies.papers.p002_limits.runs import (final_means_test_variances,
                                                    final_means_variance, plan)

PAPER = '002'

HISTORY = """\
The first pass (commit ef58917, results in that commit's results.json) was rerun under the gates
(issue 24). What changed, and why:

- **A setting in which the training set collapses, chosen first.** Every claim presupposes train
  collapse, and no first-pass run had it: the 3 x 1024 MLP (lr 0.01, no weight decay, no
  normalisation) ended with the last hidden layer's train variance at 1.25-1.41, the size sweep at
  0.65-0.81, the parity checkpoints at 5.6. A pre-study (the `prestudy` evidence) now runs six
  candidate settings the paper's protocol allows (Papyan et al.'s weight decay 5e-4, BatchNorm as
  in its VGG-11-BN, its two learning rates 0.01 and 0.1) once each at a seed the study does not
  use, and picks by a rule written before any ran: the smallest final train variance among
  candidates that fitted their training set; no test number is read. Every run of the study uses
  the chosen setting, and every claim's `setting_chosen_by_rule` gate recomputes the rule from the
  recorded pre-study.
- **The collapse gate** asks, per run, for the last hidden layer's final train variance to be
  <= 0.1 and <= 0.1 x its value when the training set was first fitted (collapse within the
  terminal phase, not a network whose classes were apart from the start).
- **002a** reads all three variances around the final model's means, as the paper defines them,
  at log-spaced checkpoints; "the test variances level off" is now measured over the terminal
  phase (from the fit to the end they fall by fewer than half as many decades as the train
  variance). The first pass's demand that the train variance halve over the second half of
  training is gone: the paper does not state it, and under cosine decay little learning rate is
  left then.
- **002b**: four sizes (500-4,000), every run seeing as many training images (the first pass
  stopped each at a training loss of 1e-3, a level its runs reached without collapsing), the
  collapse gate per run.
- **002c**: three parity pretrainings in the chosen setting, log-spaced checkpoints that must
  span >= 100x in train variance, each fine-tuned over the paper's learning-rate range, and a
  linear probe of each checkpoint beside it.
- **002d**: a layer "collapses" at the first evaluation (every 4 epochs) where its train variance
  is <= 0.1 x its value at the fit; the check is the paper's order (the last hidden layer first,
  each earlier one no sooner) with the final variances ordered. The first pass asked which layer
  first halved from initialisation, which separation without collapse passes.
- Every run is 256 epochs of 1,000 images (1,792 iterations; the paper: 80k-100k at lr 0.001).
"""
TITLE = 'Limitations of Neural Collapse for Understanding Generalization in Deep Learning'

__all__ = ['CLAIMS', 'COLLAPSE_FALL', 'COLLAPSE_MAX', 'CRITERIA', 'HISTORY', 'PAPER', 'TEST_ACCURACY_MIN',
           'TITLE', 'TRAIN_ACCURACY_MIN', 'choose', 'final_means_test_variances',
           'final_means_variance', 'plan']
