"""Paper 004: "Are Neurons Actually Collapsed? On the Fine-Grained Structure in
Neural Representations" — claims 004a-004c as one study.

Runs (``configs/papers/p004_fine_grained.py``; `plan`), each tagged for the
claims:

- ``coarse_<model>_seed<s>`` (tags ``kind='coarse', model=..., tested=...``):
  a trainer run on coarse labels y mod C~ (``data.label_map='mod:5'``),
  checkpointed at the analysis epochs (epoch 0 = initialisation), then the
  class distance matrix over the ORIGINAL classes and its MSDR at every
  analysis epoch. The models in ``clp_models`` are the tested ones (seeds
  ``coarse_seeds``): also t-SNE views per super-class, CLP and a true-label
  linear probe (`fine_grained.analyze_run`). The others (seeds
  ``reported_seeds``) are reported, not tested.
- ``fine_<model>_seed<s>`` (``kind='fine'``): a trainer run on fine labels
  (each class split at random in two, ``data.label_map='split:2'``);
  distances between the 2C fine classes at the analysis epochs.
- ``mixture_<part>`` (``kind='mixture', role='test', part=...``): the
  Gaussian-mixture sweeps of App. B (Figs 18-21), every seed's final and
  initial numbers recorded; ``mixture_hidden_dim_lr<x>``
  (``role='investigation'``): the hidden-width sweep at another learning rate.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: evidence read from the runs
by their tags (per-seed values as `spread.quantity`), gates (the
preconditions: the runs trained, the collapse happened, the MSDR read is the
trained network's, enough seeds), checks (the claim, every comparison with
its noise through `spread`), figures and text (the setting composed from
`settings`). The criteria are the ``constants`` of each spec, fixed before
the run.

Modules: `runs` (`plan`: the runs and what each records), `criteria` (the
constants and the gate helpers), `evidence` (each claim's numbers),
`figures`, `setting` (the "what we ran" sentences), `claims` (`CLAIMS`: gates,
checks, notes and the specs).

References: paper 004 secs 4-6, Figs 1-8, 11-12, 15-21, App. B; SPEC.md
"Fine-grained structure (004)".
"""

from nc_jax.studies.papers.p004_fine_grained.claims import CLAIMS
from nc_jax.studies.papers.p004_fine_grained.criteria import (C_004A, C_004B, C_004C,
                                                              moved_gate)
from nc_jax.studies.papers.p004_fine_grained.evidence import (evidence_004a,
                                                              evidence_004b,
                                                              evidence_004c)
from nc_jax.studies.papers.p004_fine_grained.runs import (KEEP, MIXTURE_PARTS,
                                                          fine_label_stats,
                                                          initial_record,
                                                          mixture_lines,
                                                          mixture_tables, plan)

PAPER = '004'
TITLE = 'Are Neurons Actually Collapsed? On the Fine-Grained Structure in Neural Representations'

__all__ = ['CLAIMS', 'C_004A', 'C_004B', 'C_004C', 'KEEP', 'MIXTURE_PARTS', 'PAPER',
           'TITLE', 'evidence_004a', 'evidence_004b', 'evidence_004c',
           'fine_label_stats', 'initial_record', 'mixture_lines', 'mixture_tables',
           'moved_gate', 'plan']
