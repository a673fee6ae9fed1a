"""nc_jax: neural collapse metrics, trainers and toy models in JAX/Flax.

The metric conventions are fixed by SPEC.md (shipped beside the project as
``../shared/SPEC.md``); every public metric cites the line it implements.
"""

__version__ = "0.1.0"
