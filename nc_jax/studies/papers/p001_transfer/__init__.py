"""Paper 001: "What deep representations should we learn? A neural collapse
perspective" — claims 001a-001d as one study.

Every pretraining is a trainer run on the source task; transfer is a linear
probe (L-BFGS, frozen features) on the downstream task, read at the layer
transfer uses (`transfer.transfer_layer`: 'pre_head' when a classifier-side
head is present, else 'penultimate'; SupCon's projection is never used). The
probes and the fine-tuning runs are `nc_jax.studies.transfer`'s. Each run
records its source accuracy and loss, the source NC1 of that layer at the end
and at initialisation (epoch 0 of its records), the probe's accuracy and the
downstream NC1. Runs (``configs/papers/p001_transfer.py``; `plan`), every one
for each of ``config.seeds`` and tagged with its coordinates (`coords`:
``loss``, ``head_depth``, ``aug``, ``adv_eps``, ``net``; claims select runs by
these tags, never by name):

- ``<loss>_seed<s>`` (001a): MSE, CE, SupCon with a linear and with an MLP
  projection head (``config.losses``: the loss group each run uses);
- ``<ce|mse>_head<L>[_seed<s>]`` (001b): L classifier-side head layers
  (``model.kwargs.head_depth``);
- ``aug<k>[_seed<s>]``, ``adv<eps>[_seed<s>]``, ``deep[_seed<s>]`` (001c):
  augmentation strengths (``augment.crop_padding`` k, ``augment.noise``),
  FGSM-training strengths (``augment.adversarial_eps``), and one deep MLP
  probed at every layer (the first seed's runs keep their original,
  unsuffixed names);
- ``ft_<variant>_seed<s>`` (001d): the fine-tuning variants of 001 sec 3.3
  from the CE model of the first seed (`transfer.finetune_run`).

Each claim is a `reproduce.ClaimSpec`: evidence (per-seed values as
`spread.quantity`), gates (every run trained, numbers finite, enough seeds;
001a: NC1 below its value at initialisation; 001d: the head-only baseline
trained), checks (`spread.exceeds`: a difference counts beyond 2 SE), figure
and text. Modules: plan.py (the runs), claims.py (constants, evidence, gates,
checks, `CLAIMS`), setting.py (the "what we ran" sentences), figures.py.
References: paper 001 secs 3.1-3.3, Table 1-2, Figs 1, 3-6; SPEC.md
"Transfer (000, 001)".
"""

from nc_jax.studies.papers.p001_transfer.claims import (
    CLAIM_001A, CLAIM_001B, CLAIM_001C, CLAIM_001D, CLAIMS, TRAINED, group_evidence)
from nc_jax.studies.papers.p001_transfer.plan import coords, plan

PAPER = '001'
TITLE = 'What deep representations should we learn? A neural collapse perspective'

__all__ = ['CLAIMS', 'CLAIM_001A', 'CLAIM_001B', 'CLAIM_001C', 'CLAIM_001D', 'PAPER',
           'TITLE', 'TRAINED', 'coords', 'group_evidence', 'plan']
