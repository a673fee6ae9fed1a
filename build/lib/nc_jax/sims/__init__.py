"""Theory simulators sharing the trainer's metrics (`nc_jax.metrics`).

- `ufm`: the unconstrained-features model (SPEC.md "Toy models"; paper 000
  Prop. 4.1).
- `gaussian_mixture`: the Gaussian-mixture toy of paper 004 App. B.
- `engine`: the one way to run either: `simulate` (one configuration, one
  jitted ``lax.scan``), `simulate_batch`, `sweep` (a grid of (seed x
  hyper-parameter) configurations as vmapped chunks), all returning a
  `SimResult`; the spec's type selects the model.

Example::

  from nc_jax import sims
  spec = sims.UFMSpec.balanced(num_classes=4, samples_per_class=5, dim=8,
                               num_steps=2000, log_every=200)
  result = sims.simulate(sims.UFMHparams(lambda_w=5e-4, lambda_h=5e-4), 0,
                         spec=spec)
  result.history['nc1']  # [11]

The studies built on them live in `nc_jax.studies.simulations`.
"""

from nc_jax.sims import gaussian_mixture
from nc_jax.sims import ufm
from nc_jax.sims.engine import (SimResult, broadcast_grid, grid, simulate,
                                simulate_batch, sweep)
from nc_jax.sims.gaussian_mixture import MixtureHparams, MixtureSpec
from nc_jax.sims.ufm import UFMHparams, UFMParams, UFMSpec

__all__ = [
    "MixtureHparams", "MixtureSpec", "SimResult", "UFMHparams", "UFMParams",
    "UFMSpec", "broadcast_grid", "gaussian_mixture", "grid", "simulate",
    "simulate_batch", "sweep", "ufm",
]
