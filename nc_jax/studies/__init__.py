"""Studies: orchestration of trainer runs and simulations into experiments.

Nothing in `nc_jax.metrics`, `data`, `models`, `probes` or `sims` imports this
package or the trainer; studies combine them.

- `sweep`: the sweep runner (`Run`, `run_all`: named runs in sub-workdirs,
  finished ones skipped, ``only=`` one run).
- `reproduce`: the paper-reproduction contract (results.json, report.md,
  `Claim`, `verdict`); ``experiments/reproduce.py``.
- `papers`: one module or package per paper (``p004_fine_grained``, ...): its runs,
  claims and criteria.
- `fine_grained`, `transfer`, `simulations`: reusable study pieces and the
  standalone studies behind ``experiments/fine_grained.py``,
  ``transfer.py``, ``ufm.py``, ``gaussian_mixture.py``.
"""
