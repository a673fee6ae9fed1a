"""Gaussian-mixture toy of paper 004 App. B: MSDR against sigma^2 and tau^2.

Full (paper settings: 8 clusters x 500 samples, d_input = d_hidden = 512,
1,000 full-batch GD steps, 10 seeds; about 1,500 runs of ~6 TFLOP each: on the
order of 100 hours on a 2-core CPU, well under an hour on one modern GPU,
estimated from the measured per-run cost, not run here):

  python experiments/gaussian_mixture.py --config=configs/gaussian_mixture.py \
      --workdir=runs/gaussian_mixture

Quick local variant (50 samples per cluster, d = 32, 500 steps, 2 seeds; about
a minute on a 2-core CPU):

  python experiments/gaussian_mixture.py --config=configs/gaussian_mixture.py:runlocal \
      --workdir=runs/gaussian_mixture_local

Parts (``config.parts``), each a figure of paper 004:
  input_dim:    MSDR vs sigma^2 for several d_input (Fig. 18).
  hidden_dim:   MSDR vs sigma^2 for several d_hidden (Fig. 19).
  weight_decay: MSDR vs sigma^2 for several weight decays (Fig. 20).
  similarity:   MSDR of similar and dissimilar sub-classes vs tau^2 at
                sigma^2 = 4 (Fig. 21, App. B.1).
Points whose training accuracy is below 100% (for any seed) are marked red.

The paper does not state the learning rate, the initialisation or the sigma^2
and tau^2 grids; the values below are this project's choice (PyTorch's default
``nn.Linear`` initialisation, learning rate 0.01, stable up to sigma^2 = 64).
configs/papers/p004_fine_grained.py chooses the rate by a rule instead and
tabulates the hidden-width trend over rate and initialisation.
"""

import ml_collections

from configs import common

def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = ml_collections.ConfigDict()
  config.parts = ("input_dim", "hidden_dim", "weight_decay", "similarity")

  # Data and model defaults (paper 004 App. B; SPEC.md "Toy models").
  config.num_clusters = 8
  config.samples_per_cluster = 500
  config.num_superclasses = 4
  config.input_dim = 512
  config.hidden_dim = 512
  config.weight_decay = 0.0
  config.learning_rate = 0.01
  config.num_steps = 1000
  config.num_seeds = 10
  # Steps between recorded MSDR values (metrics.jsonl's msdr_trajectory); 0:
  # the start and the end only.
  config.log_every = 0
  # "torch_uniform" (PyTorch's nn.Linear default) or "he_normal" (N(0, 2/fan_in),
  # zero biases): the paper states neither, and the MSDR depends on it.
  config.init = "torch_uniform"

  # Sweeps: configurations per vmapped call (0: as many as fit in the budget).
  config.chunk_size = 0
  config.memory_budget_mb = 2048

  config.sigma2 = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
  config.input_dims = (64, 128, 256, 512, 1024)
  config.hidden_dims = (64, 128, 256, 512, 1024)
  config.weight_decays = (0.0, 1e-4, 1e-3, 1e-2)

  # Fig. 21: similar sub-classes in the first `num_similar` super-classes.
  config.similarity = ml_collections.ConfigDict()
  config.similarity.sigma2 = 4.0
  config.similarity.tau2 = (0.01, 0.03, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0)
  config.similarity.num_similar = 2

  if v.runlocal:
    config.samples_per_cluster = 50
    config.input_dim = 32
    config.hidden_dim = 32
    config.num_steps = 500
    config.num_seeds = 2
    config.sigma2 = (0.05, 0.25, 1.0, 2.0, 4.0, 16.0)
    config.input_dims = (16, 32, 64)
    config.hidden_dims = (16, 32, 64)
    config.weight_decays = (0.0, 1e-3, 1e-2)
    config.similarity.tau2 = (0.01, 0.1, 1.0, 4.0)
  return common.apply(config, v)
