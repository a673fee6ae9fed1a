"""Theory simulators sharing the trainer's metrics (`nc_jax.metrics`).

- `ufm`: the unconstrained-features model (SPEC.md "Toy models"; paper 000
  Prop. 4.1).
- `gaussian_mixture`: the Gaussian-mixture toy of paper 004 App. B.
- `studies`: the experiments built on them (experiments/ufm.py,
  experiments/gaussian_mixture.py).

Each simulator runs one configuration as one jitted ``lax.scan`` and a grid of
(seed x hyper-parameter) configurations as one ``vmap`` (``sweep``).
"""
