"""The unconstrained-features model (UFM): neural collapse as an optimum.

The features H are free variables trained jointly with the last layer:

    L(W, b, H) = (1/N) sum_i loss(W h_i + b, y_i)
                 + lambda_W/2 ||W||_F^2 + lambda_H/2 ||H||_F^2 + lambda_b/2 ||b||^2

with loss cross-entropy or (1/2)||z - t||^2 on one-hot targets t (optionally
label-smoothed). With lambda_H > 0 the minimisers are simplex ETFs (Zhu et al.
2021, Tirer & Bruna 2022); with lambda_H = 0 the loss cannot see the features'
component in the null space of W, so within-class variation there never
vanishes (paper 000, Prop. 4.1).

One run is one jitted computation: an outer ``lax.scan`` over log points, an
inner ``lax.scan`` over ``log_every`` optimiser steps, and the full collapse
report of `nc_jax.metrics` at every log point (the trainer's metrics, not a
copy), through `nc_jax.sims.engine` (``engine.simulate(hp, seed, spec=spec)``,
``engine.sweep``: a grid of (seed x hyper-parameter) configurations as one
computation with the training ``vmap``-ped over configurations, in chunks).

Static sizes live in `UFMSpec` (hashable, a ``jit`` static argument); the
numbers one sweeps over live in `UFMHparams` (traced, ``vmap``-able).

References:
  SPEC.md "Toy models", UFM line; paper 000 Prop. 4.1 and Fig. 1;
  Zhu et al. 2021, "A geometric analysis of neural collapse with
  unconstrained features".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nc_jax import metrics
from nc_jax.sims import engine

# ----------------------------------------------------------------------------
# Problem definition.
# ----------------------------------------------------------------------------


class UFMHparams(NamedTuple):
  """Hyper-parameters of one UFM run; every field may be traced or batched.

  Attributes:
    learning_rate: step size of the optimiser.
    lambda_w: weight decay on W.
    lambda_h: weight decay on the features H (0: paper 000 Prop. 4.1).
    lambda_b: weight decay on b.
    label_smoothing: alpha; targets (1 - alpha) e_y + alpha / K.
    init_scale: standard deviation of the i.i.d. normal entries of W and H.
    momentum: momentum of the "momentum" optimiser (unused by the others).
    null_space_noise: standard deviation of the Gaussian noise added to every
      feature at every step after projection onto the null space of W (only
      with ``UFMSpec(null_space_noise=True)``).
  """

  learning_rate: Any = 0.5
  lambda_w: Any = 5e-4
  lambda_h: Any = 5e-4
  lambda_b: Any = 0.0
  label_smoothing: Any = 0.0
  init_scale: Any = 0.1
  momentum: Any = 0.9
  null_space_noise: Any = 0.0


def _as_arrays(hp: UFMHparams, dtype=jnp.float32) -> UFMHparams:
  return UFMHparams(*(jnp.asarray(v, dtype) for v in hp))


# Optimisers by name; each maps the (traced) hyper-parameters to an optax
# transformation, so learning rates and momenta can be swept under vmap.
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "gd": lambda hp: optax.sgd(hp.learning_rate),
    "momentum": lambda hp: optax.sgd(hp.learning_rate, momentum=hp.momentum),
    "adam": lambda hp: optax.adam(hp.learning_rate),
}


@dataclasses.dataclass(frozen=True)
class UFMSpec:
  """Static description of a UFM problem (a hashable ``jit`` static argument).

  Attributes:
    class_sizes: n_k for k = 0..K-1; unequal sizes give an imbalanced problem.
    dim: feature dimension p (p >= K and p < K both allowed).
    loss: "ce" (softmax cross-entropy) or "mse" ((1/2)||W h + b - t||^2).
    bias: whether the classifier has a trained bias b.
    optimizer: a name in `OPTIMIZERS` ("gd" is full-batch gradient descent)
      or any callable mapping `UFMHparams` to an ``optax.GradientTransformation``.
    num_steps: optimiser steps; a multiple of ``log_every``.
    log_every: steps between two recorded collapse reports (step 0 is
      recorded too).
    null_space_noise: add `UFMHparams.null_space_noise` noise projected onto
      null(W) at every step (needs dim > K).
  """

  class_sizes: tuple[int, ...]
  dim: int
  loss: str = "ce"
  bias: bool = True
  optimizer: str | Callable[[Any], optax.GradientTransformation] = "gd"
  num_steps: int = 1000
  log_every: int = 100
  null_space_noise: bool = False

  def __post_init__(self):
    object.__setattr__(self, "class_sizes", tuple(int(n) for n in self.class_sizes))
    if len(self.class_sizes) < 2 or min(self.class_sizes) < 1:
      raise ValueError(f"need >= 2 classes with >= 1 sample each; got {self.class_sizes}")
    if self.loss not in ("ce", "mse"):
      raise ValueError(f"loss must be 'ce' or 'mse'; got {self.loss!r}")
    if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
      raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a callable; "
                       f"got {self.optimizer!r}")
    if self.log_every < 1 or self.num_steps % self.log_every:
      raise ValueError(f"num_steps ({self.num_steps}) must be a positive multiple of "
                       f"log_every ({self.log_every})")
    if self.null_space_noise and self.dim <= self.num_classes:
      raise ValueError(f"null-space noise needs dim > K; got dim={self.dim}, "
                       f"K={self.num_classes}")

  @classmethod
  def balanced(cls, *, num_classes: int, samples_per_class: int, **kwargs) -> UFMSpec:
    return cls(class_sizes=(samples_per_class,) * num_classes, **kwargs)

  @property
  def num_classes(self) -> int:
    return len(self.class_sizes)

  @property
  def num_samples(self) -> int:
    return sum(self.class_sizes)

  @property
  def labels(self) -> np.ndarray:
    """[N] labels, class k repeated n_k times (sorted)."""
    return np.repeat(np.arange(self.num_classes), self.class_sizes).astype(np.int32)

  @property
  def first_of_class(self) -> np.ndarray:
    """[K] index of the first sample of every class."""
    return np.concatenate([[0], np.cumsum(self.class_sizes)[:-1]]).astype(np.int32)

  @property
  def steps(self) -> np.ndarray:
    """[num_steps / log_every + 1] the steps at which reports are recorded."""
    return np.arange(0, self.num_steps + 1, self.log_every)

  def make_optimizer(self, hp: UFMHparams) -> optax.GradientTransformation:
    make = OPTIMIZERS[self.optimizer] if isinstance(self.optimizer, str) else self.optimizer
    return make(hp)


class UFMParams(NamedTuple):
  """Trainable variables: W [K, p], b [K] (zeros and untrained without bias), H [N, p]."""

  w: jax.Array
  b: jax.Array
  h: jax.Array


def init_params(hp: UFMHparams, key: jax.Array, *, spec: UFMSpec) -> UFMParams:
  """W and H with i.i.d. N(0, init_scale^2) entries, b = 0."""
  kw, kh = jax.random.split(key)
  k, p, n = spec.num_classes, spec.dim, spec.num_samples
  return UFMParams(
      w=hp.init_scale * jax.random.normal(kw, (k, p)),
      b=jnp.zeros((k,)),
      h=hp.init_scale * jax.random.normal(kh, (n, p)))


def targets(hp: UFMHparams, *, spec: UFMSpec) -> jax.Array:
  """[N, K] label-smoothed one-hot targets (1 - alpha) e_y + alpha / K."""
  onehot = jax.nn.one_hot(spec.labels, spec.num_classes)
  return (1.0 - hp.label_smoothing) * onehot + hp.label_smoothing / spec.num_classes


def objective(params: UFMParams, hp: UFMHparams, *,
              spec: UFMSpec) -> tuple[jax.Array, jax.Array]:
  """The UFM objective of SPEC.md.

  Args:
    params: W [K, p], b [K], H [N, p].
    hp: hyper-parameters (lambda_*, label_smoothing are used).
    spec: the problem (static).

  Returns:
    (total, data): the regularised objective and its data term
    (1/N) sum_i loss(W h_i + b, y_i), both scalars.

  References:
    SPEC.md "Toy models", UFM line.
  """
  logits = params.h @ params.w.T + params.b
  t = targets(hp, spec=spec)
  if spec.loss == "ce":
    per_sample = optax.softmax_cross_entropy(logits, t)
  else:
    per_sample = 0.5 * jnp.sum((logits - t) ** 2, axis=-1)
  data = jnp.mean(per_sample)
  reg = (hp.lambda_w * jnp.sum(params.w ** 2) + hp.lambda_h * jnp.sum(params.h ** 2)
         + hp.lambda_b * jnp.sum(params.b ** 2)) / 2
  return data + reg, data


def project_null_space(w: jax.Array, x: jax.Array) -> jax.Array:
  """Rows of x projected onto null(W): x - x Q^T Q, Q an orthonormal basis of row(W). [M, p].

  Q comes from modified Gram-Schmidt run twice per row ("twice is enough"
  for orthogonality to working precision). A row whose remainder is below
  10 p eps times the largest row norm is dependent on the previous ones and
  dropped: a trained W is often of rank K - 1 (rows summing to ~0 under
  collapse), where a Cholesky solve would return NaN. Plain jnp on purpose:
  under vmap a LAPACK call becomes a batched kernel that, on a CPU with few
  threads, can starve XLA's thread pool (see `simulate_batch`).
  """
  k, p = w.shape
  tol = metrics.default_rtol(w.dtype, p) * jnp.max(jnp.linalg.norm(w, axis=1))

  def add_row(i, q):
    v = w[i]
    for _ in range(2):
      v = v - (q @ v) @ q
    n = jnp.linalg.norm(v)
    return q.at[i].set(jnp.where(n > tol, v / jnp.where(n > tol, n, 1.0), 0.0))

  q = jax.lax.fori_loop(0, k, add_row, jnp.zeros_like(w))
  return x - (x @ q.T) @ q


def record(params: UFMParams, hp: UFMHparams, *, spec: UFMSpec) -> dict[str, jax.Array]:
  """The collapse report of the features H with classifier (W, b), plus training scalars."""
  labels = jnp.asarray(spec.labels)
  b = params.b if spec.bias else None
  out = dict(metrics.collapse_report(params.h, labels, num_classes=spec.num_classes,
                                     classifier=(params.w, b)))
  total, data = objective(params, hp, spec=spec)
  logits = params.h @ params.w.T + params.b
  out["loss"] = total
  out["data_loss"] = data
  out["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == labels)
  out["sigma_b_trace"] = jnp.trace(metrics.sigma_b(
      metrics.class_moments(params.h, labels, num_classes=spec.num_classes)))
  out["w_norm"] = jnp.linalg.norm(params.w)
  out["h_norm"] = jnp.linalg.norm(params.h)
  return out


def _class_means(spec: UFMSpec, x: jax.Array) -> jax.Array:
  """[K, p] per-class means of the rows of x."""
  sums = jax.ops.segment_sum(x, jnp.asarray(spec.labels), num_segments=spec.num_classes)
  return sums / jnp.asarray(spec.class_sizes, x.dtype)[:, None]


class _State(NamedTuple):
  params: UFMParams
  opt_state: Any
  key: jax.Array


def _init(spec: UFMSpec, hp: UFMHparams, seed: jax.Array) -> _State:
  init_key, noise_key = jax.random.split(engine.prng_key(seed))
  params = init_params(hp, init_key, spec=spec)
  return _State(params, spec.make_optimizer(hp).init(params), noise_key)


def _train_block(spec: UFMSpec, hp: UFMHparams, state: _State) -> _State:
  """``spec.log_every`` optimiser steps (a ``lax.scan``)."""
  opt = spec.make_optimizer(hp)
  grad_fn = jax.grad(lambda p: objective(p, hp, spec=spec)[0])
  labels = jnp.asarray(spec.labels)

  def step(state, _):
    params, opt_state, key = state
    grads = grad_fn(params)
    if not spec.bias:
      grads = grads._replace(b=jnp.zeros_like(grads.b))
    updates, opt_state = opt.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    if spec.null_space_noise:
      key, sub = jax.random.split(key)
      noise = hp.null_space_noise * jax.random.normal(sub, params.h.shape)
      # Centred within each class, the noise leaves every class mean (hence
      # Sigma_B) unchanged; projected onto null(W), it leaves W h unchanged.
      noise = noise - _class_means(spec, noise)[labels]
      params = params._replace(h=params.h + project_null_space(params.w, noise))
    return _State(params, opt_state, key), None

  return jax.lax.scan(step, state, None, length=spec.log_every)[0]


def null_space_direction(params: UFMParams, *, spec: UFMSpec) -> jax.Array:
  """A unit vector v in null(W), as far from span(M) as null(W) allows. [p].

  v is the top right-singular vector of (I - P_M) V_0, V_0 an orthonormal
  basis of null(W) and P_M the projector onto the centred class means, so
  variation added along v lands in V_B-perp (paper 000 sec 4.1).
  """
  k, p = spec.num_classes, spec.dim
  if p <= k:
    raise ValueError(f"null(W) is trivial for dim <= K; got dim={p}, K={k}")
  _, _, vt = jnp.linalg.svd(params.w, full_matrices=True)
  null_basis = vt[k:].T  # [p, p - K]
  labels = jnp.asarray(spec.labels)
  m = metrics.centred_means(metrics.class_moments(params.h, labels, num_classes=k))
  # The K centred means sum to zero: the first K - 1 span span(M).
  q, _ = jnp.linalg.qr(m[:k - 1].T)
  away = null_basis - q @ (q.T @ null_basis)
  _, _, a = jnp.linalg.svd(away, full_matrices=False)
  v = null_basis @ a[0]
  return v / jnp.linalg.norm(v)


def null_space_perturbation(params: UFMParams, scale: jax.Array, *,
                            spec: UFMSpec) -> UFMParams:
  """The construction of paper 000 Prop. 4.1: h_{k,1} += scale * v for every class k.

  v = `null_space_direction`. W h' = W h, hence the data loss is unchanged;
  with balanced classes every class mean moves by the same scale/n * v, so
  Sigma_B is unchanged too; Tr(Sigma_W) grows like scale^2 (n - 1)/n^2.

  Args:
    params: W [K, p], b, H [N, p].
    scale: lambda of the proof; a scalar.
    spec: the problem (needs dim > K).

  Returns:
    `UFMParams` with the perturbed H.

  References:
    Paper 000 Prop. 4.1 and its proof (App. A.1); SPEC.md "Toy models".
  """
  v = null_space_direction(params, spec=spec)
  return params._replace(h=params.h.at[spec.first_of_class].add(scale * v))


@partial(jax.jit, static_argnames=("spec",))
def perturbed_records(params: UFMParams, hp: UFMHparams, scales: jax.Array, *,
                      spec: UFMSpec) -> dict[str, jax.Array]:
  """`record` after `null_space_perturbation` by each of ``scales`` [L]; leaves [L].

  One scale at a time (``lax.map``), for the reason in `default_record_batch_size`.
  """
  hp = _as_arrays(hp)
  v = null_space_direction(params, spec=spec)
  perturb = lambda s: params._replace(h=params.h.at[spec.first_of_class].add(s * v))
  return jax.lax.map(lambda s: record(perturb(s), hp, spec=spec),
                     jnp.asarray(scales, jnp.float32))


def config_bytes(spec: UFMSpec) -> int:
  """Rough working-set bytes of one UFM run under vmap (float32).

  H and its gradient, optimiser state (up to two slots) and the metric
  temporaries ([N, p] centred features, a few p x p matrices), times a
  safety factor of 2 for XLA's buffers.
  """
  n, p, k = spec.num_samples, spec.dim, spec.num_classes
  floats = 8 * n * p + 6 * k * p + 6 * p * p + 4 * n * k
  return 2 * 4 * floats


def _record(spec: UFMSpec, hp: UFMHparams, state: _State) -> dict[str, jax.Array]:
  return record(state.params, hp, spec=spec)


MODEL = engine.SimModel(init=_init, train_block=_train_block, record=_record,
                        params=lambda state: state.params,
                        config_bytes=config_bytes, as_arrays=_as_arrays)
engine.register(UFMSpec, MODEL)
