"""Independent float64 NumPy reference of SPEC.md, written for the tests.

Deliberately naive: boolean-mask indexing, explicit loops over classes and
pairs, ``np.linalg.eigh`` on the full matrices, brute-force distances. It
shares no code with nc_jax.metrics.
"""

import numpy as np


def pinv_eig(a, rtol, rank=None):
  w, v = np.linalg.eigh((a + a.T) / 2)
  order = np.argsort(w)[::-1]
  w, v = w[order], v[:, order]
  keep = w > rtol * max(w[0], 0)
  if rank is not None:
    keep &= np.arange(len(w)) < rank
  return (v[:, keep] / w[keep]) @ v[:, keep].T, v[:, keep]


def report(h, y, num_classes, W=None, b=None, ood=None, rank=None, rtol=1e-10):
  h = np.asarray(h, np.float64)
  y = np.asarray(y)
  p = h.shape[1]
  classes = [k for k in range(num_classes) if np.any(y == k)]
  K = len(classes)
  hs = {k: h[y == k] for k in classes}
  mu = {k: hs[k].mean(0) for k in classes}
  mu_g = np.mean([mu[k] for k in classes], 0)
  M = np.stack([mu[k] - mu_g for k in classes], 1)  # p x K
  sw = sum(np.cov(hs[k].T, bias=True).reshape(p, p) if len(hs[k]) > 1 else np.zeros((p, p))
           for k in classes) / K
  sb = M @ M.T / K
  st = sw + sb
  r_b = min(p, K - 1) if rank is None else rank
  sb_pinv, ub = pinv_eig(sb, rtol, r_b)
  st_pinv, _ = pinv_eig(st, rtol)
  out = {}
  out["fuzziness"] = np.trace(sb_pinv @ sw)
  out["nc1"] = out["fuzziness"] / K
  t = np.trace(st_pinv @ sb)
  out["vci"] = 1 - t / r_b
  out["linear_probe_mse"] = 0.5 - 1 / (2 * K) - t / (2 * K)
  out["squared_distance"] = np.trace(sw) / np.trace(sb)
  unit = {k: hs[k] / np.linalg.norm(hs[k], axis=1, keepdims=True) for k in classes}
  # Mean within-class cosine distance over all pairs (i = j included).
  cw = np.mean([np.mean(1 - unit[k] @ unit[k].T) for k in classes])
  out["cosine_within"] = cw
  ubar = np.mean([unit[k].mean(0) for k in classes], 0)
  out["cosine_total"] = 1 - ubar @ ubar
  out["class_separation"] = 1 - cw / out["cosine_total"]
  V = {k: np.mean(np.sum((hs[k] - mu[k]) ** 2, 1)) for k in classes}
  pairs = [(k, l) for k in classes for l in classes if k != l]
  out["cdnv"] = np.mean([(V[k] + V[l]) / (2 * np.sum((mu[k] - mu[l]) ** 2)) for k, l in pairs])
  G = M.T @ M
  out["nc2_etf"] = np.linalg.norm(G / np.linalg.norm(G) - (np.eye(K) - 1 / K) / np.sqrt(K - 1))
  norms = np.linalg.norm(M, axis=0)
  out["nc2_equinorm"] = norms.std() / norms.mean()
  cos = (M.T @ M) / np.outer(norms, norms)
  idx = [(i, j) for i in range(K) for j in range(K) if i != j]
  out["nc2_equiangular"] = np.mean([abs(cos[i, j] + 1 / (K - 1)) for i, j in idx])
  mh = M / norms
  logs = np.array([np.log(1 / np.linalg.norm(mh[:, i] - mh[:, j])) for i, j in idx])
  out["gnc2_log_mean"] = logs.mean()
  out["gnc2_log_var"] = logs.var()
  out["numerical_rank"] = np.mean([
      np.linalg.norm(hs[k], "fro") ** 2 / np.linalg.norm(hs[k], 2) ** 2 for k in classes])
  pb = ub @ ub.T
  out["within_vb"] = np.trace(pb @ sw)
  out["within_vb_perp"] = np.trace((np.eye(p) - pb) @ sw)
  if W is not None:
    W = np.asarray(W, np.float64)
    b = np.zeros(num_classes) if b is None else np.asarray(b, np.float64)
    Wk = W[classes]
    out["nc3_self_duality"] = np.linalg.norm(
        Wk.T / np.linalg.norm(Wk) - M / np.linalg.norm(M)) ** 2
    c = np.array([Wk[i] @ M[:, i] / np.linalg.norm(Wk[i]) / np.linalg.norm(M[:, i])
                  for i in range(K)])
    out["nc3_cos_mean"] = c.mean()
    out["unc3_cos_var"] = c.var()
    pred = np.argmax(h @ W.T + b, 1)
    cm = np.stack([mu[k] for k in classes])
    ncc = np.array(classes)[np.argmin(((h[:, None, :] - cm[None]) ** 2).sum(-1), 1)]
    out["nc4_ncc_mismatch"] = np.mean(pred != ncc)
  if ood is not None:
    mo = np.asarray(ood, np.float64).mean(0)
    out["nc5_ood_orthogonality"] = np.mean([
        abs(mu[k] @ mo) / np.linalg.norm(mu[k]) / np.linalg.norm(mo) for k in classes])
  return out


def class_distance_matrix(h, y, num_classes):
  """Brute force: mean over all pairs (u in i, v in j) of ||h_u - h_v||^2."""
  h = np.asarray(h, np.float64)
  d = np.full((num_classes, num_classes), np.nan)
  for i in range(num_classes):
    for j in range(num_classes):
      a, b = h[y == i], h[y == j]
      if len(a) and len(b):
        d[i, j] = np.mean(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
  return d


def variance_to_means(h, y, means):
  """Paper 002 TrainVariance(t), class-balanced (SPEC.md Notation): loops over classes.

  (1/K) sum_k mean_{i in k} ||h_i - c_k||^2 / ((1/K) sum_k ||c_k - c_bar||^2).
  """
  h, means = np.asarray(h, np.float64), np.asarray(means, np.float64)
  y = np.asarray(y)
  classes = [k for k in range(len(means)) if np.any(y == k)]
  within = np.mean([np.mean(np.sum((h[y == k] - means[k]) ** 2, 1)) for k in classes])
  c = np.stack([means[k] for k in classes])
  return within / np.mean(np.sum((c - c.mean(0)) ** 2, 1))


def msdr(d, superclass):
  """SPEC.md `msdr`: mean of D_ij over pairs i != j in one super-class / mean_i D_ii.

  Classes whose D_ii is NaN (absent) are left out; pairs are listed one by one.
  """
  d = np.asarray(d, np.float64)
  classes = [i for i in range(len(d)) if not np.isnan(d[i, i])]
  pairs = [d[i, j] for i in classes for j in classes
           if i != j and superclass[i] == superclass[j]]
  return np.mean(pairs) / np.mean([d[i, i] for i in classes])
