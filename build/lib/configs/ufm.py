"""Unconstrained-features model: collapse, paper 000 Prop. 4.1, phase diagram.

Full (K = 10 classes x 50 samples, p = 32, 10,000 full-batch GD steps; about
5 minutes on a 2-core CPU):

  python experiments/ufm.py --config=configs/ufm.py --workdir=runs/ufm

Quick local variant (K = 5 x 10, p = 12, 2,000 steps; about a minute on a
2-core CPU, most of it compilation):

  python experiments/ufm.py --config=configs/ufm.py:runlocal --workdir=runs/ufm_local

Parts (``config.parts``):
  collapse:   CE and MSE with weight decay on W and H; nc1, nc2_etf,
              nc3_self_duality, vci -> 0 (Zhu et al. 2021).
  null_space: lambda_H = 0 (paper 000 Prop. 4.1): loss and Sigma_B settle,
              within_vb_perp does not vanish; it grows under noise confined
              to null(W) (the Fig. 1 trend) and under the Prop. 4.1
              perturbation, which leaves the loss unchanged.
  phase:      final nc1 over a (lambda_W, lambda_H) grid.
"""

import ml_collections

from configs import common

def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = ml_collections.ConfigDict()
  config.parts = ("collapse", "null_space", "phase")

  # Problem (SPEC.md "Toy models", UFM).
  config.num_classes = 10
  config.samples_per_class = 50
  # Imbalance: the last `minority_classes` classes get `minority_samples` each.
  config.minority_classes = 0
  config.minority_samples = 5
  config.dim = 32
  config.bias = True

  # Optimisation: "gd" (full-batch gradient descent), "momentum" or "adam".
  config.optimizer = "gd"
  config.learning_rate = 0.5
  config.momentum = 0.9
  config.init_scale = 0.1
  config.lambda_b = 0.0
  config.label_smoothing = 0.0
  config.num_steps = 10_000
  config.log_every = 100
  config.num_seeds = 5

  # Sweeps: configurations per vmapped call (0: as many as fit in the budget).
  config.chunk_size = 0
  config.memory_budget_mb = 1024

  # (a) Collapse with weight decay on W and H.
  config.collapse = ml_collections.ConfigDict()
  config.collapse.losses = ("ce", "mse")
  config.collapse.lambda_w = 5e-4
  config.collapse.lambda_h = 5e-4

  # (b) lambda_H = 0 (paper 000 Prop. 4.1, Fig. 1).
  config.null_space = ml_collections.ConfigDict()
  config.null_space.losses = ("mse", "ce")
  config.null_space.lambda_w = 0.0
  # Std of within-class noise projected onto null(W), added every step.
  config.null_space.noise = 0.01
  # lambda of the Prop. 4.1 construction h_{k,1} += lambda v, v in null(W).
  config.null_space.perturbation_scales = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

  # (c) Phase diagram of the final nc1 over (lambda_W, lambda_H).
  config.phase = ml_collections.ConfigDict()
  config.phase.loss = "ce"
  config.phase.lambda_w = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
  config.phase.lambda_h = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
  config.phase.num_seeds = 3

  if v.runlocal:
    config.num_classes = 5
    config.samples_per_class = 10
    config.dim = 12
    config.num_steps = 2000
    config.log_every = 100
    config.num_seeds = 2
    # Stronger decay: within-class variation decays like exp(-lr lambda_H t).
    config.collapse.lambda_w = 5e-3
    config.collapse.lambda_h = 5e-3
    config.null_space.perturbation_scales = (0.0, 1.0, 10.0, 100.0)
    config.phase.lambda_w = (1e-4, 1e-3, 1e-2, 1e-1)
    config.phase.lambda_h = (1e-4, 1e-3, 1e-2, 1e-1)
    config.phase.num_seeds = 1
  return common.apply(config, v)
