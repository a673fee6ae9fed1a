"""Simulator studies: ``experiments/ufm.py`` and ``experiments/gaussian_mixture.py``.

Each study reads an ml_collections config (``configs/ufm.py``,
``configs/gaussian_mixture.py``), runs its grids as vmapped sweeps and writes
into the workdir (`nc_jax.workdir`): ``config.json``, ``metrics.jsonl`` (one
JSON object per logged step or sweep point, SPEC.md metric names),
``summary.json`` and PNG plots.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax.sims import engine
from nc_jax.sims import gaussian_mixture as gm
from nc_jax.sims import ufm
from nc_jax.studies.common import say
from nc_jax.workdir import Workdir


def _sweep_options(config) -> dict[str, Any]:
  return dict(chunk_size=config.chunk_size or None,
              memory_budget_bytes=int(config.memory_budget_mb) << 20, progress=say)


def _scalars(record: Mapping[str, Any], index: tuple[int, ...]) -> dict[str, float]:
  """The scalar metrics of ``record`` at ``index`` (arrays of exactly that rank)."""
  return {k: float(v[index]) for k, v in record.items() if np.ndim(v) == len(index)}


def _log_history(wd: Workdir, history: Mapping[str, np.ndarray], steps: np.ndarray,
                 **fixed: Any) -> None:
  """Logs one line per (seed, step) of a [S, T] history."""
  num_seeds = next(iter(history.values())).shape[0]
  wd.log_many({**fixed, "seed": s, "step": int(t), **_scalars(history, (s, i))}
              for s in range(num_seeds) for i, t in enumerate(steps))


def _seed_mean(history: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # NaN in every seed stays NaN
    return {k: np.nanmean(v, axis=0) for k, v in history.items()}


# ----------------------------------------------------------------------------
# Unconstrained-features model.
# ----------------------------------------------------------------------------


def ufm_spec(config, *, loss: str, null_space_noise: bool = False) -> ufm.UFMSpec:
  """The `UFMSpec` a UFM config describes (see configs/ufm.py)."""
  sizes = [config.samples_per_class] * config.num_classes
  for i in range(config.minority_classes):
    sizes[-1 - i] = config.minority_samples
  return ufm.UFMSpec(class_sizes=tuple(sizes), dim=config.dim, loss=loss, bias=config.bias,
                     optimizer=config.optimizer, num_steps=config.num_steps,
                     log_every=config.log_every, null_space_noise=null_space_noise)


def ufm_hparams(config, **overrides: Any) -> ufm.UFMHparams:
  """The config's shared `UFMHparams`, with ``overrides`` (scalars or [G] grids)."""
  hp = ufm.UFMHparams(learning_rate=config.learning_rate, lambda_b=config.lambda_b,
                      label_smoothing=config.label_smoothing, init_scale=config.init_scale,
                      momentum=config.momentum)
  return hp._replace(**overrides)


_COLLAPSE_KEYS = ("nc1", "nc2_etf", "nc3_self_duality", "vci", "within_vb_perp")


def ufm_collapse(config, wd: Workdir) -> dict[str, Any]:
  """(a) Weight decay on W and H: nc1, nc2_etf, nc3_self_duality, vci -> 0."""
  summary = {}
  seeds = range(config.num_seeds)
  for loss in config.collapse.losses:
    spec = ufm_spec(config, loss=loss)
    hp = ufm_hparams(config, lambda_w=config.collapse.lambda_w,
                     lambda_h=config.collapse.lambda_h)
    say(f"[ufm collapse] loss={loss}: {len(seeds)} seeds x {spec.num_steps} steps")
    history = {k: v[:, 0] for k, v in engine.sweep(hp, seeds, spec=spec,
                                                 **_sweep_options(config)).history.items()}
    _log_history(wd, history, spec.steps, part="collapse", loss_type=loss)
    mean = _seed_mean(history)
    plots.curves(wd.file(f"collapse_{loss}.png"), spec.steps,
                {k: mean[k] for k in _COLLAPSE_KEYS}, logy=True,
                title=f"UFM {loss.upper()}, lambda_W = {config.collapse.lambda_w:g}, "
                f"lambda_H = {config.collapse.lambda_h:g}")
    summary[loss] = {k: float(mean[k][-1]) for k in _COLLAPSE_KEYS + ("loss", "accuracy")}
  return summary


def _change(x: np.ndarray, scale: float) -> float:
  """|x(end) - x(middle)| / scale: how much a curve still moves in the second half."""
  return float(abs(x[-1] - x[len(x) // 2]) / scale)


def ufm_null_space(config, wd: Workdir) -> dict[str, Any]:
  """(b) lambda_H = 0, paper 000 Prop. 4.1 and Fig. 1."""
  summary = {}
  seeds = range(config.num_seeds)
  ns = config.null_space
  for loss in ns.losses:
    curves, out = {}, {}
    for noise in (False, True):
      spec = ufm_spec(config, loss=loss, null_space_noise=noise)
      hp = ufm_hparams(config, lambda_w=ns.lambda_w, lambda_h=0.0, null_space_noise=ns.noise)
      say(f"[ufm null_space] loss={loss}, null-space noise={noise}: {len(seeds)} seeds")
      result = engine.sweep(hp, seeds, spec=spec, **_sweep_options(config))
      history = {k: v[:, 0] for k, v in result.history.items()}
      _log_history(wd, history, spec.steps, part="null_space", loss_type=loss,
                   null_space_noise=ns.noise if noise else 0.0)
      mean = _seed_mean(history)
      tag = " (null-space noise)" if noise else ""
      curves[f"within_vb{tag}"] = mean["within_vb"]
      curves[f"within_vb_perp{tag}"] = mean["within_vb_perp"]
      out["noise" if noise else "plain"] = {
          "loss_change_second_half_rel_initial": _change(mean["loss"], mean["loss"][0]),
          "sigma_b_trace_change_second_half_rel_final": _change(mean["sigma_b_trace"],
                                                                mean["sigma_b_trace"][-1]),
          **{f"{k}_{when}": float(mean[k][i]) for k in ("within_vb", "within_vb_perp", "loss")
             for when, i in (("initial", 0), ("final", -1))}}
      if not noise:
        plots.curves(wd.file(f"null_space_settle_{loss}.png"), spec.steps,
                    {k: mean[k] for k in ("loss", "sigma_b_trace", "within_vb",
                                          "within_vb_perp")},
                    logy=True, title=f"UFM {loss.upper()}, lambda_H = 0")
        final = ufm.UFMParams(*(np.asarray(x[0, 0]) for x in result.params))
        out["perturbation"] = _perturbation(spec, final, hp, ns.perturbation_scales, wd)
    plots.curves(wd.file(f"null_space_fig1_{loss}.png"), spec.steps, curves, logy=True,
                title=f"UFM {loss.upper()}, lambda_H = 0 (000 Fig. 1)")
    summary[loss] = out
  return summary


def _perturbation(spec: ufm.UFMSpec, params: ufm.UFMParams, hp: ufm.UFMHparams,
                  scales: Sequence[float], wd: Workdir) -> dict[str, Any]:
  """Paper 000 Prop. 4.1 applied to trained features, for each scale."""
  # Scale 0 first: the unperturbed loss comes from the same compiled call.
  rec = ufm.perturbed_records(params, hp, np.asarray([0.0, *scales], np.float32), spec=spec)
  base = float(rec["loss"][0])
  rec = {k: np.asarray(v)[1:] for k, v in rec.items()}
  change = np.abs(rec["loss"] - base)
  wd.log_many({"part": "null_space_perturbation", "loss_type": spec.loss, "scale": float(s),
               "loss_change": float(change[i]), **_scalars(rec, (i,))}
              for i, s in enumerate(scales))
  plots.curves(wd.file(f"null_space_perturbation_{spec.loss}.png"), scales,
              {"within_vb_perp": rec["within_vb_perp"], "sigma_b_trace": rec["sigma_b_trace"],
               "|loss change|": change}, xlabel="lambda (h_k1 += lambda v, v in null(W))",
              logy=True, title="Prop. 4.1 perturbation of the trained UFM")
  return {"scales": list(scales), "max_abs_loss_change": float(change.max()),
          "loss": base, "within_vb_perp": rec["within_vb_perp"].tolist(),
          "sigma_b_trace": rec["sigma_b_trace"].tolist()}


def ufm_phase(config, wd: Workdir) -> dict[str, Any]:
  """(c) Final nc1 over a (lambda_W, lambda_H) grid."""
  ph = config.phase
  spec = ufm_spec(config, loss=ph.loss)
  g = engine.grid(lambda_w=ph.lambda_w, lambda_h=ph.lambda_h)
  seeds = range(ph.num_seeds)
  say(f"[ufm phase] {len(g['lambda_w'])} (lambda_W, lambda_H) x {len(seeds)} seeds")
  history = engine.sweep(ufm_hparams(config, **g), seeds, spec=spec,
                      **_sweep_options(config)).history
  final = {k: v[..., -1] for k, v in history.items() if v.ndim == 3}  # [S, G]
  # Strong decay drives W, H to the origin (the trivial minimiser).
  trivial = final["h_norm"] ** 2 / spec.num_samples < 1e-8
  wd.log_many({"part": "phase", "loss_type": ph.loss, "seed": s, "step": spec.num_steps,
               "lambda_w": float(g["lambda_w"][i]), "lambda_h": float(g["lambda_h"][i]),
               "trivial": bool(trivial[s, i]), **_scalars(final, (s, i))}
              for s in seeds for i in range(len(g["lambda_w"])))
  shape = (len(ph.lambda_w), len(ph.lambda_h))
  with np.errstate(invalid="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # all-trivial cells: mean of nothing
    nc1 = np.nanmean(np.where(trivial, np.nan, final["nc1"]), 0).reshape(shape)
  all_trivial = trivial.all(0).reshape(shape)
  plots.heatmap(wd.file("phase_nc1.png"), nc1, rows=ph.lambda_w, cols=ph.lambda_h,
           row_label="lambda_W", col_label="lambda_H", hatch=all_trivial,
           title=f"final nc1, UFM {ph.loss.upper()}, {spec.num_steps} steps")
  return {"lambda_w": list(ph.lambda_w), "lambda_h": list(ph.lambda_h),
          "nc1": nc1.tolist(), "trivial": all_trivial.tolist()}


def ufm_study(config, workdir: str | os.PathLike[str]) -> dict[str, Any]:
  """Runs the parts of configs/ufm.py named in ``config.parts``; returns the summary."""
  wd = Workdir(workdir)
  wd.write_config(config)
  parts = {"collapse": ufm_collapse, "null_space": ufm_null_space, "phase": ufm_phase}
  unknown = set(config.parts) - set(parts)
  if unknown:
    raise ValueError(f"unknown parts {sorted(unknown)}; choose from {sorted(parts)}")
  summary = {name: parts[name](config, wd) for name in config.parts}
  wd.write_summary(summary)
  return summary


# ----------------------------------------------------------------------------
# Gaussian mixture (paper 004 App. B).
# ----------------------------------------------------------------------------


def mixture_spec(config, **overrides: Any) -> gm.MixtureSpec:
  """The `MixtureSpec` a config describes (see configs/gaussian_mixture.py).

  ``config.log_every`` (0 or absent: only the start and the end recorded)
  and ``config.init`` (absent: PyTorch's default) are optional.
  """
  kwargs = dict(num_clusters=config.num_clusters,
                samples_per_cluster=config.samples_per_cluster,
                num_superclasses=config.num_superclasses, input_dim=config.input_dim,
                hidden_dim=config.hidden_dim, num_steps=config.num_steps,
                log_every=config.get("log_every", 0) or config.num_steps,
                init=config.get("init", "torch_uniform"))
  return gm.MixtureSpec(**{**kwargs, **overrides})


def _mixture_lines(config) -> list[tuple[str, str, gm.MixtureSpec, list[tuple]]]:
  """(figure, line label, spec, [(sigma2, tau2, weight_decay), ...]) per plotted line."""
  wd0 = config.weight_decay
  vs_sigma = lambda wdecay: [(float(s), 0.0, float(wdecay)) for s in config.sigma2]
  lines = []
  if "input_dim" in config.parts:
    lines += [("input_dim", f"d_input={d}", mixture_spec(config, input_dim=d), vs_sigma(wd0))
              for d in config.input_dims]
  if "hidden_dim" in config.parts:
    lines += [("hidden_dim", f"d_hidden={d}", mixture_spec(config, hidden_dim=d),
               vs_sigma(wd0)) for d in config.hidden_dims]
  if "weight_decay" in config.parts:
    lines += [("weight_decay", f"wd={w:g}", mixture_spec(config), vs_sigma(w))
              for w in config.weight_decays]
  if "similarity" in config.parts:
    sim = config.similarity
    spec = mixture_spec(config, num_similar=sim.num_similar)
    lines.append(("similarity", "tau2", spec,
                  [(float(sim.sigma2), float(t), float(wd0)) for t in sim.tau2]))
  unknown = set(config.parts) - {"input_dim", "hidden_dim", "weight_decay", "similarity"}
  if unknown:
    raise ValueError(f"unknown parts {sorted(unknown)}")
  return lines


def _mixture_runs(config, lines, wd: Workdir) -> dict[tuple, dict[str, np.ndarray]]:
  """Runs every distinct (spec, point) once, grouped by spec; final metrics [S]."""
  groups: dict[gm.MixtureSpec, dict[tuple, None]] = {}
  for _, _, spec, points in lines:
    groups.setdefault(spec, {}).update(dict.fromkeys(points))
  seeds = range(config.num_seeds)
  results = {}
  for n, (spec, points) in enumerate(groups.items()):
    points = list(points)
    say(f"[gaussian mixture] group {n + 1}/{len(groups)}: d_input={spec.input_dim}, "
         f"d_hidden={spec.hidden_dim}, similar={spec.num_similar}: {len(points)} points "
         f"x {len(seeds)} seeds")
    sigma2, tau2, wdecay = (np.asarray(c, np.float32) for c in zip(*points))
    hp = gm.MixtureHparams(sigma2=sigma2, tau2=tau2, learning_rate=config.learning_rate,
                           weight_decay=wdecay)
    out = engine.sweep(hp, seeds, spec=spec, **_sweep_options(config)).history  # [S, G, T, ...]
    for i, point in enumerate(points):
      final = {k: v[:, i, -1] for k, v in out.items()}
      final["msdr_init"] = out["msdr"][:, i, 0]
      results[(spec, point)] = final
      # MSDR over the recorded steps (config.log_every), start and end included.
      trajectory = np.asarray(out["msdr"][:, i, :], np.float64)
      wd.log_many({"input_dim": spec.input_dim, "hidden_dim": spec.hidden_dim,
                   "num_similar": spec.num_similar, "init": spec.init,
                   "learning_rate": float(config.learning_rate), "sigma2": point[0],
                   "tau2": point[1], "weight_decay": point[2], "seed": s,
                   "step": spec.num_steps, "fit": bool(final["train_accuracy"][s] >= 1.0),
                   **_scalars(final, (s,)), "msdr_steps": spec.steps.tolist(),
                   "msdr_trajectory": trajectory[s].tolist()}
                  for s in seeds)
  return results


def mixture_study(config, workdir: str | os.PathLike[str]) -> dict[str, Any]:
  """Paper 004 App. B: MSDR vs sigma^2 (Figs. 18-20) and vs tau^2 (Fig. 21)."""
  wd = Workdir(workdir)
  wd.write_config(config)
  lines = _mixture_lines(config)
  results = _mixture_runs(config, lines, wd)
  summary: dict[str, Any] = {}
  figures = dict.fromkeys(fig for fig, *_ in lines)
  for fig in figures:
    drawn = {}
    for _, label, spec, points in (l for l in lines if l[0] == fig):
      finals = [results[(spec, p)] for p in points]
      if fig == "similarity":
        for kind in ("similar", "dissimilar"):
          drawn[f"msdr_{kind}"] = _line(finals, f"msdr_{kind}")
        x = np.asarray([p[1] for p in points])
      else:
        drawn[label] = _line(finals, "msdr")
        x = np.asarray([p[0] for p in points])
    summary[fig] = {"x": x.tolist(), **{k: {"msdr_mean": v[0].tolist(),
                                            "msdr_std": v[1].tolist(),
                                            "all_fit": v[2].tolist(),
                                            "msdr_init_mean": v[3].tolist()}
                                        for k, v in drawn.items()}}
    if fig == "similarity":
      plots.msdr_vs_tau2(wd.file("msdr_vs_tau2.png"), x, drawn)
    else:
      plots.msdr_vs_sigma2(wd.file(f"msdr_vs_sigma2_{fig}.png"), x, drawn,
                      f"MSDR vs sigma^2 by {fig} (004 App. B)")
  wd.write_summary(summary)
  return summary


def _line(finals: Sequence[Mapping[str, np.ndarray]], key: str) -> tuple[np.ndarray, ...]:
  """(mean [P], std [P], all seeds fitted [P], mean at initialisation [P]) of ``key``."""
  values = np.stack([f[key] for f in finals])  # [P, S]
  fit = np.stack([f["train_accuracy"] >= 1.0 for f in finals]).all(1)
  init = np.stack([f["msdr_init"] for f in finals]).mean(1)
  return values.mean(1), values.std(1), fit, init
