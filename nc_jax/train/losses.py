"""Training objectives of the collapse studies, as pure per-batch functions.

- `cross_entropy`: softmax cross-entropy with temperature tau and label
  smoothing (paper 000 sec. 6.3 sweeps tau).
- `mse`: square loss on (smoothed) one-hot targets (Hui & Belkin 2021; the UFM
  convention of SPEC.md, (1/2) ||z - e_y||^2).
- `within_class_cosine`: the within-class cosine-similarity term that paper
  000 sec. 6.3 adds with weight lambda (Kornblith et al. 2021).
- `supcon`: supervised contrastive loss (Khosla et al. 2020), paper 001.
- `objective`: the training loss a trainer config names, on a model's batch;
  `adversarial`: FGSM / PGD inputs that maximise it (paper 001 Fig 5).

All take a batch and return a scalar mean (or per-sample values where noted);
they are traceable and shard-agnostic (means over the batch axis are plain
``jnp`` reductions, partitioned by GSPMD on an Auto mesh).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def smooth_one_hot(labels: jax.Array, num_classes: int,
                   label_smoothing: float = 0.0) -> jax.Array:
  """(1 - s) e_y + s / C: ``[B] -> [B, C]`` float32 targets."""
  onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  return onehot * (1.0 - label_smoothing) + label_smoothing / num_classes


def cross_entropy(logits: jax.Array, labels: jax.Array, *,
                  temperature: float = 1.0,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-sample ``-sum_c t_c log softmax(z / tau)_c``.

  Args:
    logits: [B, C] classifier outputs z.
    labels: [B] integer labels.
    temperature: tau of Softmax_tau(z) = softmax(z / tau) (paper 000 sec. 6.3).
    label_smoothing: s, targets (1 - s) e_y + s / C.

  Returns:
    [B] losses; log C for uniform logits, 0 for a confident correct one.
  """
  targets = smooth_one_hot(labels, logits.shape[-1], label_smoothing)
  return optax.softmax_cross_entropy(
      logits.astype(jnp.float32) / temperature, targets)


def mse(logits: jax.Array, labels: jax.Array, *,
        label_smoothing: float = 0.0) -> jax.Array:
  """Per-sample ``(1/2) ||z - t||^2`` with t the (smoothed) one-hot target.

  Returns:
    [B] losses; 0 when the logits equal the targets.
  """
  targets = smooth_one_hot(labels, logits.shape[-1], label_smoothing)
  return 0.5 * jnp.sum((logits.astype(jnp.float32) - targets)**2, axis=-1)


def _unit(x: jax.Array) -> jax.Array:
  x = x.astype(jnp.float32)
  # The epsilon keeps the gradient finite for an all-zero (dead ReLU) feature.
  return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)


def within_class_cosine(features: jax.Array, labels: jax.Array,
                        num_classes: int) -> jax.Array:
  """Mean over classes in the batch of the mean pairwise cosine similarity.

  R = (1/K_b) sum_k (1/n_k^2) sum_{i, j in k} cos(h_i, h_j)
    = (1/K_b) sum_k ||(1/n_k) sum_{i in k} h_i / ||h_i|| ||^2,
  K_b the classes present in the batch: "the average within-class cosine
  similarity divided by the number of data points of each class in the
  batch" (paper 000 sec. 6.3). Computed from the class sums of unit vectors:
  O(B p), no B x B matrix. Training minimises ``loss + lambda * R``: lambda > 0
  penalises within-class cosine similarity, the direction of paper 000's
  Table 2 (as lambda grows its COS SIM column falls and the squared distance
  rises; `tests/test_train.py` pins this on a trained model).

  Args:
    features: [B, p] features (the classifier input).
    labels: [B] integer labels.
    num_classes: C.

  Returns:
    Scalar in [0, 1]; 1 when every class of the batch is collapsed to a ray.
  """
  u = _unit(features)
  sums = jax.ops.segment_sum(u, labels, num_segments=num_classes)
  counts = jax.ops.segment_sum(jnp.ones(labels.shape, jnp.float32), labels,
                               num_segments=num_classes)
  present = counts > 0
  sq = jnp.sum(sums * sums, axis=-1) / jnp.where(present, counts, 1.0)**2
  return jnp.sum(jnp.where(present, sq, 0.0)) / jnp.maximum(present.sum(), 1)


def supcon(z: jax.Array, labels: jax.Array, *,
           temperature: float = 0.1) -> jax.Array:
  """Supervised contrastive loss L^sup_out (Khosla et al. 2020, eq. 2).

  For anchor i with positives P(i) (same label, j != i):
  ``-1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p / T) /
  sum_{a != i} exp(z_i.z_a / T))``
  on L2-normalised z, averaged over the anchors that have a positive.

  Args:
    z: [B, d] projections (normalised here).
    labels: [B] integer labels (with two views per image, both views carry
      the image's label).
    temperature: T.

  Returns:
    Scalar loss.
  """
  z = _unit(z)
  sim = (z @ z.T) / temperature
  self_mask = jnp.eye(z.shape[0], dtype=bool)
  sim = jnp.where(self_mask, -jnp.inf, sim)
  log_prob = sim - jax.nn.logsumexp(sim, axis=1, keepdims=True)
  pos = (labels[:, None] == labels[None, :]) & ~self_mask
  num_pos = pos.sum(axis=1)
  per_anchor = -jnp.sum(jnp.where(pos, log_prob, 0.0), axis=1)
  per_anchor = per_anchor / jnp.maximum(num_pos, 1)
  has_pos = num_pos > 0
  return jnp.sum(jnp.where(has_pos, per_anchor, 0.0)) / jnp.maximum(
      has_pos.sum(), 1)


LOSSES = dict(ce=cross_entropy, mse=mse, supcon=supcon)
"""``config.loss.name`` -> the loss; ``config.loss.kwargs`` are its keywords."""


# The training objective of a config, and adversarial inputs for it.


def objective(model, x: jax.Array, labels: jax.Array, *, loss: str,
              kwargs: dict, cosine_reg, num_classes: int
              ) -> tuple[jax.Array, jax.Array]:
  """(training loss, logits) of one batch in train mode.

  Args:
    loss: a name in `LOSSES`; ``kwargs`` its keyword arguments (Python
      numbers or traced scalars).
    cosine_reg: lambda of the within-class cosine term R
      (`within_class_cosine`), added to the loss: ``loss + lambda * R``;
      None: no term.
  """
  logits, feats = model(x)
  # The objective is float32 whatever the model computes in (model.compute_dtype).
  logits = logits.astype(jnp.float32)
  feats = {k: v.astype(jnp.float32) for k, v in feats.items()}
  if loss == 'supcon':
    # SupCon trains the encoder through the projection; the classifier is an
    # online linear probe on frozen features, so accuracy stays meaningful.
    value = supcon(feats['projection'], labels, **kwargs)
    logits = model.head(jax.lax.stop_gradient(feats['penultimate'])).astype(jnp.float32)
    value += jnp.mean(cross_entropy(logits, labels))
  else:
    value = jnp.mean(LOSSES[loss](logits, labels, **kwargs))
  if cosine_reg is not None:
    value += cosine_reg * within_class_cosine(feats['penultimate'], labels,
                                              num_classes)
  return value, logits


def adversarial(loss_of, x: jax.Array, *, eps, steps: int, key) -> jax.Array:
  """L-inf adversarial inputs in [0, 1] pixel space (FGSM or PGD; 001 Fig 5).

  Maximises ``loss_of(x)`` (the training objective at the current
  parameters, BatchNorm in train mode with its statistics left unchanged):
  one signed-gradient step of ``eps`` (FGSM, ``steps`` = 1), or ``steps``
  steps of 2.5 eps / steps from a uniform random start, projected onto the
  eps-ball and [0, 1] (PGD, Madry et al. 2018). No gradient flows through
  the attack.
  """
  grad = jax.grad(loss_of)
  x0 = jax.lax.stop_gradient(x)
  if steps == 1:
    return jax.lax.stop_gradient(jnp.clip(x0 + eps * jnp.sign(grad(x0)), 0.0, 1.0))
  step = 2.5 * eps / steps
  xa = jnp.clip(x0 + jax.random.uniform(key, x0.shape, x0.dtype, -eps, eps), 0.0, 1.0)

  def body(_, xa):
    xa = xa + step * jnp.sign(grad(xa))
    return jnp.clip(jnp.clip(xa, x0 - eps, x0 + eps), 0.0, 1.0)

  return jax.lax.stop_gradient(jax.lax.fori_loop(0, steps, body, xa))
