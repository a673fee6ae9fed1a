"""Paper 000: "Quantifying the Variability Collapse of Neural Networks" (VCI) —
claims 000a-000e as one study.

Runs (``configs/papers/p000_vci.py``; `plan`), each tagged for the claims to
select it by (`reproduce.Study.where`):

- ``schedule_<name>_seed<s>`` (``kind='schedule', schedule=<name>``; 000c,
  000d): one pretraining per learning-rate schedule (exponential x0.975 per
  epoch after a warm-up from 1e-5; cosine; cosine without weight decay and
  warm-up) and seed, the collapse metrics of the train features recorded
  along training (epoch 0 is the initialisation).
- ``tau<t>_seed<s>`` (``kind='temperature', temperature=<t>``) and
  ``cosreg<l>_seed<s>`` (``kind='cosine_reg', cosine_reg=<l>``) (000e):
  pretrainings swept over the softmax temperature (``loss.kwargs.temperature``)
  and over the within-class cosine regulariser (``loss.cosine_reg``); each
  then probed (L-BFGS linear probes of the frozen penultimate features) on
  the downstream tasks. MLOG is computed from the recorded accuracies by the
  claim.
- ``theorem`` (``kind='theorem'``; 000a, 000b): on the features of one
  trained network (the temperature sweep's run at ``theorem_temperature``,
  first seed), Thm 5.1's closed form against a fitted least-squares probe at
  several layers, and the invariance of VCI under random invertible maps
  (Obs 4.2's 2 x 2 example included).
- ``ufm_null_space`` (``kind='ufm'``; 000d): the UFM with lambda_H = 0 and NO
  injected noise.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: its evidence (read from the
runs by their tags), gates (every run read trained; the collapse the claim is
about happened, measured against the initialisation; >= 3 seeds where the
claim is about a trend or a difference), checks (every comparison of seed
groups through `spread`) and a criterion written over the same constants
the gates and checks read, fixed before the run; its setting sentence is
composed from `settings`. Trainer runs are read through `nc_jax.rundir.RunDir`.

Modules: plan.py (the runs and what each computes), evidence.py (what each
claim reads from them), claims.py (constants, gates, checks, `CLAIMS`),
setting.py (the "what we ran" sentences), figures.py.

References: paper 000 secs 4-6, Thm 5.1, Prop 4.1, Obs 4.2-4.5, Figs 1, 3, 7,
Tables 1-2; SPEC.md.
"""

from nc_jax.studies.papers.p000_vci.claims import (
    CLAIM_000A, CLAIM_000B, CLAIM_000C, CLAIM_000D, CLAIM_000E, CLAIMS, COLLAPSED, SEEDS,
    TRAINED, TRAINED_FEATURES)
from nc_jax.studies.papers.p000_vci.evidence import sweep_statistics
from nc_jax.studies.papers.p000_vci.plan import (
    FALL_METRICS, KEEP, METRICS_000E, SWEEP_KEYS, SWEEPS, TRACKED, least_squares_probe_loss,
    plan)

PAPER = '000'
TITLE = 'Quantifying the Variability Collapse of Neural Networks'

__all__ = [
    'CLAIMS', 'CLAIM_000A', 'CLAIM_000B', 'CLAIM_000C', 'CLAIM_000D', 'CLAIM_000E',
    'COLLAPSED', 'FALL_METRICS', 'KEEP', 'METRICS_000E', 'PAPER', 'SEEDS', 'SWEEPS',
    'SWEEP_KEYS', 'TITLE', 'TRACKED', 'TRAINED', 'TRAINED_FEATURES',
    'least_squares_probe_loss', 'plan', 'sweep_statistics',
]
