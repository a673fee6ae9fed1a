"""Paper 004: "Are Neurons Actually Collapsed? On the Fine-Grained Structure in
Neural Representations" — claims 004a-004c as one study.

Runs (``configs/papers/p004_fine_grained.py``; `plan`), each tagged for the
claims:

- ``coarse_<model>_seed<s>`` (tags ``kind='coarse', model=..., tested=...,
  msdr_tested=..., clp=...``): a trainer run on coarse labels
  (``data.label_map='mod:5'`` or a ``'table:...'`` pairing), checkpointed at
  the analysis epochs (epoch 0 = initialisation), then the class distance
  matrix over the ORIGINAL classes and its MSDR at every analysis epoch; for
  ``clp_models`` also t-SNE views per super-class, CLP and a true-label
  linear probe (`fine_grained.analyze_run`). ``tested_models`` run
  ``coarse_seeds`` and are judged; the others run ``reported_seeds``.
- ``fine_<model>_seed<s>`` (``kind='fine'``): a trainer run on fine labels
  (each class split at random in two, ``data.label_map='split:2'``);
  distances between the 2C fine classes and the fine-label NC1 at the
  analysis epochs.
- ``mixture_lr_rule_lr<x>`` (``kind='mixture', role='lr_rule'``): the
  pre-study, the default line at sigma^2 >= 1 at each rate of ``lr_grid``;
  `choose_learning_rate` picks the rate from training accuracy alone.
- ``mixture_<part>`` (``role='test'``): the sweeps of App. B (Figs 18-21) at
  the chosen rate (they depend on the pre-study's runs), every seed's
  trained, initial and input MSDR recorded.
- ``mixture_width_lr<x>_<init>`` (``role='width_table'``): 004d's sign table;
  ``mixture_init_check_<init>`` (``role='init_check'``): the first pass's
  disputed point under both initialisations.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: evidence read from the runs
by their tags (per-seed values as `spread.quantity`), gates (the
preconditions: the runs trained, the collapse happened, the MSDR read is the
trained network's, enough seeds, the rate chosen by the rule), checks (the
claim, every comparison with its noise through `spread`), figures and text
(the setting composed from `settings`). The criteria are the ``constants`` of
each spec, fixed before the run. `HISTORY` says what changed since the first
pass.

Modules: `runs` (`plan`: the runs and what each records), `criteria` (the
constants and the gate helpers), `evidence` (each claim's numbers),
`figures`, `setting` (the "what we ran" sentences), `claims` (`CLAIMS`: gates,
checks, notes and the specs).

References: paper 004 secs 4-6, Figs 1-8, 11-12, 15-21, App. B; SPEC.md
"Fine-grained structure (004)".
"""

from nc_jax.studies.papers.p004_fine_grained.claims import CLAIMS
from nc_jax.studies.papers.p004_fine_grained.criteria import (C_004A, C_004B, C_004C,
                                                              C_004D, moved_gate)
from nc_jax.studies.papers.p004_fine_grained.evidence import (evidence_004a,
                                                              evidence_004b,
                                                              evidence_004c,
                                                              evidence_004d, kept)
from nc_jax.studies.papers.p004_fine_grained.runs import (KEEP, MIXTURE_PARTS,
                                                          choose_learning_rate,
                                                          fine_label_stats,
                                                          initial_record,
                                                          lr_rule_rows, mixture_lines,
                                                          mixture_tables, plan)

PAPER = '004'
TITLE = 'Are Neurons Actually Collapsed? On the Fine-Grained Structure in Neural Representations'

HISTORY = """\
The first pass (MNIST y mod 5, SGD lr 0.05, 10,000 images; the mixture at lr 0.01 chosen for
stability; 150 epochs of fine labels) was read against the paper and rerun:

- **004a tested a merge the paper says should collapse.** y mod 5 on MNIST pairs 4/9 and 3/8,
  among the most confusable digits: the paper's Sec 5 "similar sub-classes" case. The tested
  task is now Fashion-MNIST y mod 5 (clothing with footwear or bags: dissimilar, as CIFAR-10's
  pairs are), all 60,000 training images, under the paper's configs #1 and #2 (SGD lr 0.01,
  weight decay 5e-4 / 5e-5), 3 seeds each. MNIST y mod 5 and one random pairing (App. F) are
  reported. The MSDR check, which already held at initialisation (1.18), now also asks that
  training keep at least half of the untrained network's excess MSDR; coarse NC1 is a gate.
- **004b's trends were read on MSDR, which the input has for free** (1 + sigma^2, 1 + tau^2).
  The sigma^2 and tau^2 checks now read the kept fraction (MSDR - 1) / (input MSDR - 1). The
  learning rate is chosen first by a rule that reads only training accuracy; the weight-decay
  grid spans lr x wd x steps from 0.01 to 3 (it shrank the weights by at most exp(-0.1)).
  The paper's 8 x 500 samples (the first pass: 8 x 200).
- **The hidden-width trend is its own claim (004d)**: its sign is tabulated over learning rate
  and initialisation, and a sign that flips makes it inconclusive. The first pass's disputed
  point (MSDR 7.1 here, 2.2-2.6 in an independent He-normal implementation) is rerun under
  both initialisations.
- **004c had no competing collapse** (after 150 epochs the halves of a class were 16% further
  apart than within a half). It now trains 1,000 images (50 per fine label) for 300 epochs in
  a setting a rule chose from pilots of the fine-label NC1 (BatchNorm, lr 0.1, weight decay
  5e-3, cosine; the paper's config #1 memorised the halves but left NC1 at 1.7), and a gate
  asks the fine-label NC1 to fall 10x from the early epoch.
"""

__all__ = ['CLAIMS', 'C_004A', 'C_004B', 'C_004C', 'C_004D', 'HISTORY', 'KEEP',
           'MIXTURE_PARTS', 'PAPER', 'TITLE', 'choose_learning_rate', 'evidence_004a',
           'evidence_004b', 'evidence_004c', 'evidence_004d', 'fine_label_stats',
           'initial_record', 'kept', 'lr_rule_rows', 'mixture_lines', 'mixture_tables',
           'moved_gate', 'plan']
