"""The Gaussian-mixture toy of paper 004 (App. B): fine-grained structure under collapse.

Data: C clusters, x ~ N(mu_c, I_d) with cluster means mu_c ~ N(0, sigma^2 I_d);
the network only sees the coarse label c mod C~ (two or more clusters per
super-class). In the first ``num_similar`` super-classes the sub-classes are
"similar" (004 App. B.1): mu ~ N(0, sigma^2 I), then mu_c, mu_c' ~ N(mu, tau^2 I).

Model: a 2-layer ReLU MLP, h = relu(x W1 + b1), logits = h W2 + b2, trained by
full-batch gradient descent on the cross-entropy of the coarse labels with L2
weight decay on every parameter. The representation is the hidden layer h.

Metrics, recorded every ``log_every`` steps inside one jitted ``lax.scan``:
the class distance matrix D over the ORIGINAL clusters and the mean squared
distance ratio MSDR (`nc_jax.metrics.class_distance_matrix`, `msdr`), split
into similar and dissimilar super-classes when both exist, plus the full
collapse report of `nc_jax.metrics.collapse_report` on the coarse labels.

The MLP is a plain pytree of arrays rather than a Flax module: a sweep creates
one network per (seed, hyper-parameter) inside ``vmap``, which plain arrays
make trivial (no module state to split and merge).

References:
  Paper 004 App. B (Figs. 18-20) and B.1 (Fig. 21); SPEC.md "Toy models",
  Gaussian mixture line, and "Fine-grained structure (004)".
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nc_jax import metrics
from nc_jax.sims import engine


class MixtureHparams(NamedTuple):
  """Hyper-parameters of one run; every field may be traced or batched.

  Attributes:
    sigma2: sigma^2, variance of the cluster means (separation).
    tau2: tau^2, variance of similar sub-class means around their shared mean.
    learning_rate: gradient-descent step size.
    weight_decay: L2 coefficient wd; the objective gets wd/2 ||theta||^2
      (PyTorch's coupled ``weight_decay``), biases included.
  """

  sigma2: Any = 1.0
  tau2: Any = 1.0
  learning_rate: Any = 0.01
  weight_decay: Any = 0.0


# The initialisations `init_mlp` knows (`MixtureSpec.init`).
INITS = ("torch_uniform", "he_normal")


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  """Static sizes of the mixture problem (a hashable ``jit`` static argument).

  Defaults are the paper-004 App. B settings (SPEC.md "Toy models").

  Attributes:
    num_clusters: C, original classes.
    samples_per_cluster: n per cluster (N = C n).
    num_superclasses: C~, coarse classes; cluster c belongs to c mod C~.
    input_dim: d_input.
    hidden_dim: d_hidden, the representation's dimension.
    num_similar: super-classes (the first ones) whose sub-classes are similar.
    num_steps: gradient-descent steps; a multiple of ``log_every``.
    log_every: steps between recorded metrics (step 0 is recorded too).
    init: the network's initialisation, one of `INITS`: ``'torch_uniform'``
      (PyTorch's ``nn.Linear`` default, weights and biases
      U(-1/sqrt(fan_in), 1/sqrt(fan_in))) or ``'he_normal'`` (weights
      N(0, 2/fan_in), biases 0). The paper does not state it.
  """

  num_clusters: int = 8
  samples_per_cluster: int = 500
  num_superclasses: int = 4
  input_dim: int = 512
  hidden_dim: int = 512
  num_similar: int = 0
  num_steps: int = 1000
  log_every: int = 1000
  init: str = "torch_uniform"

  def __post_init__(self):
    if self.init not in INITS:
      raise ValueError(f"init={self.init!r}; choose from {INITS}")
    if not 2 <= self.num_superclasses < self.num_clusters:
      raise ValueError(f"need 2 <= num_superclasses < num_clusters; got "
                       f"{self.num_superclasses}, {self.num_clusters}")
    if not 0 <= self.num_similar <= self.num_superclasses:
      raise ValueError(f"num_similar must lie in [0, {self.num_superclasses}]; got "
                       f"{self.num_similar}")
    if self.log_every < 1 or self.num_steps % self.log_every:
      raise ValueError(f"num_steps ({self.num_steps}) must be a positive multiple of "
                       f"log_every ({self.log_every})")

  @property
  def num_samples(self) -> int:
    return self.num_clusters * self.samples_per_cluster

  @property
  def superclass(self) -> np.ndarray:
    """[C] super-class c mod C~ of every cluster."""
    return np.arange(self.num_clusters) % self.num_superclasses

  @property
  def fine_labels(self) -> np.ndarray:
    """[N] cluster of every sample (sorted)."""
    return np.repeat(np.arange(self.num_clusters), self.samples_per_cluster).astype(np.int32)

  @property
  def coarse_labels(self) -> np.ndarray:
    """[N] super-class of every sample, fine label mod C~ (SPEC.md coarse labels)."""
    return (self.fine_labels % self.num_superclasses).astype(np.int32)

  @property
  def similar_clusters(self) -> np.ndarray:
    """Indices of the clusters in similar super-classes."""
    return np.flatnonzero(self.superclass < self.num_similar)

  @property
  def dissimilar_clusters(self) -> np.ndarray:
    return np.flatnonzero(self.superclass >= self.num_similar)

  @property
  def steps(self) -> np.ndarray:
    return np.arange(0, self.num_steps + 1, self.log_every)


class MixtureData(NamedTuple):
  """x [N, d] inputs, fine [N] and coarse [N] labels, means [C, d] cluster means."""

  x: jax.Array
  fine: jax.Array
  coarse: jax.Array
  means: jax.Array


def sample_mixture(hp: MixtureHparams, key: jax.Array, *, spec: MixtureSpec) -> MixtureData:
  """Draws the data set of paper 004 App. B / B.1.

  Dissimilar clusters: mu_c = sigma z_c. Similar clusters (super-classes
  s < num_similar): mu_c = sigma z_s + tau z_c, sharing z_s within the
  super-class. Samples: x = mu_c + standard normal noise.

  Args:
    hp: uses sigma2 and tau2.
    key: PRNG key.
    spec: static sizes.

  Returns:
    `MixtureData`; labels are sorted by cluster.

  References:
    Paper 004 App. B and B.1; SPEC.md "Toy models".
  """
  k_mean, k_shared, k_noise = jax.random.split(key, 3)
  c, d = spec.num_clusters, spec.input_dim
  z = jax.random.normal(k_mean, (c, d))
  shared = jnp.sqrt(hp.sigma2) * jax.random.normal(k_shared, (spec.num_superclasses, d))
  similar = jnp.asarray(spec.superclass < spec.num_similar)[:, None]
  means = jnp.where(similar, shared[spec.superclass] + jnp.sqrt(hp.tau2) * z,
                    jnp.sqrt(hp.sigma2) * z)
  fine = jnp.asarray(spec.fine_labels)
  x = means[fine] + jax.random.normal(k_noise, (spec.num_samples, d))
  return MixtureData(x, fine, jnp.asarray(spec.coarse_labels), means)


def init_mlp(key: jax.Array, *, spec: MixtureSpec) -> dict[str, jax.Array]:
  """The MLP's parameters under ``spec.init``.

  ``'torch_uniform'``: PyTorch's ``nn.Linear`` default, weights and biases
  ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (weight variance 1/(3 fan_in)).
  ``'he_normal'``: weights ~ N(0, 2/fan_in), biases 0 (He et al. 2015), six
  times the variance of the first.
  """
  keys = jax.random.split(key, 4)
  d, h, k = spec.input_dim, spec.hidden_dim, spec.num_superclasses
  if spec.init == "he_normal":
    w = lambda key, shape, fan_in: jax.random.normal(key, shape) * np.sqrt(2.0 / fan_in)
    b = lambda key, shape, fan_in: jnp.zeros(shape)
  else:
    w = b = lambda key, shape, fan_in: jax.random.uniform(
        key, shape, minval=-1.0, maxval=1.0) / np.sqrt(fan_in)
  return {"w1": w(keys[0], (d, h), d), "b1": b(keys[1], (h,), d),
          "w2": w(keys[2], (h, k), h), "b2": b(keys[3], (k,), h)}


def hidden(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
  """The representation relu(x W1 + b1). [N, d_hidden]."""
  return jax.nn.relu(x @ params["w1"] + params["b1"])


def objective(params: dict[str, jax.Array], data: MixtureData,
              hp: MixtureHparams) -> tuple[jax.Array, jax.Array]:
  """(mean coarse cross-entropy + wd/2 ||theta||^2, training accuracy on coarse labels)."""
  logits = hidden(params, data.x) @ params["w2"] + params["b2"]
  ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, data.coarse))
  l2 = sum(jnp.sum(p * p) for p in jax.tree.leaves(params))
  acc = jnp.mean(jnp.argmax(logits, -1) == data.coarse)
  return ce + 0.5 * hp.weight_decay * l2, acc


def record(params: dict[str, jax.Array], data: MixtureData, hp: MixtureHparams, *,
           spec: MixtureSpec) -> dict[str, jax.Array]:
  """MSDR, the class distance matrix and the coarse collapse report of the hidden layer.

  Returns:
    Dict of scalars: every key of `nc_jax.metrics.collapse_report` (coarse
    labels, classifier (W2^T, b2)), "msdr", "msdr_similar" and
    "msdr_dissimilar" (when both kinds of super-class exist), the same three
    of the inputs x ("msdr_input", "msdr_input_similar", ...), "loss",
    "train_accuracy"; and "class_distance" [C, C] over the original clusters.
  """
  h = hidden(params, data.x)
  out = dict(metrics.collapse_report(h, data.coarse, num_classes=spec.num_superclasses,
                                     classifier=(params["w2"].T, params["b2"])))
  d = metrics.class_distance_matrix(h, data.fine, num_classes=spec.num_clusters)
  out["class_distance"] = d
  d_input = metrics.class_distance_matrix(data.x, data.fine, num_classes=spec.num_clusters)
  for prefix, dist in (("msdr", d), ("msdr_input", d_input)):
    out[prefix] = metrics.msdr(dist, spec.superclass)
    if 0 < spec.num_similar < spec.num_superclasses:
      for name, idx in (("similar", spec.similar_clusters),
                        ("dissimilar", spec.dissimilar_clusters)):
        out[f"{prefix}_{name}"] = metrics.msdr(dist[np.ix_(idx, idx)], spec.superclass[idx])
  out["loss"], out["train_accuracy"] = objective(params, data, hp)
  return out


def _init(spec: MixtureSpec, hp: MixtureHparams, seed: jax.Array):
  data_key, init_key = jax.random.split(engine.prng_key(seed))
  return init_mlp(init_key, spec=spec), sample_mixture(hp, data_key, spec=spec)


def _train_block(spec: MixtureSpec, hp: MixtureHparams, state):
  """``spec.log_every`` full-batch gradient-descent steps (a ``lax.scan``)."""
  params, data = state
  grad_fn = jax.grad(lambda p: objective(p, data, hp)[0])

  def step(params, _):
    return jax.tree.map(lambda p, g: p - hp.learning_rate * g, params, grad_fn(params)), None

  return jax.lax.scan(step, params, None, length=spec.log_every)[0], data


def _as_arrays(hp: MixtureHparams) -> MixtureHparams:
  return MixtureHparams(*(jnp.asarray(v, jnp.float32) for v in hp))


def config_bytes(spec: MixtureSpec) -> int:
  """Rough working-set bytes of one run under vmap (float32).

  Inputs, pre-activations, hidden layer and their gradients ([N, d] and
  [N, h] arrays), the weights and their gradients, metric temporaries
  (h x h matrices), times 2 for XLA's buffers.
  """
  n, d, h = spec.num_samples, spec.input_dim, spec.hidden_dim
  floats = 2 * n * d + 6 * n * h + 3 * d * h + 6 * h * h
  return 2 * 4 * floats


def _record(spec: MixtureSpec, hp: MixtureHparams, state) -> dict[str, jax.Array]:
  params, data = state
  return record(params, data, hp, spec=spec)


MODEL = engine.SimModel(init=_init, train_block=_train_block, record=_record,
                        params=lambda state: state[0],
                        config_bytes=config_bytes, as_arrays=_as_arrays)
engine.register(MixtureSpec, MODEL)
