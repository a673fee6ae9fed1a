"""Studies behind ``experiments/fine_grained.py`` and ``experiments/transfer.py``.

Both train with the nc_jax trainer, keep its checkpoints and outputs in a
sub-folder, then restore checkpoints and probe the frozen features. Outputs
follow `nc_jax.workdir`: ``config.json``, ``metrics.jsonl``, ``summary.json``
and PNGs in the workdir.

- `fine_grained_study` (paper 004): train on coarse labels y mod C~; at
  chosen epochs, the class distance matrix over the ORIGINAL classes and its
  MSDR; at the end, t-SNE views per super-class and the CLP accuracy on the
  original test labels next to a linear probe trained with the true labels.
- `transfer_study` (papers 000, 001): pretrain, then on a downstream set:
  layer-wise L-BFGS probes and downstream collapse per layer (their rank
  correlation), MLOG, and the fine-tuning variants of 001 sec 3.3.

This module imports the trainer; ``from nc_jax import probes`` does not
import it.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nc_jax import data
from nc_jax import finetune
from nc_jax import metrics
from nc_jax import models
from nc_jax import train
from nc_jax.probes import clp as clp_lib
from nc_jax.probes import correlation
from nc_jax.probes import linear
from nc_jax.probes import plots
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir, plot_curves


def _say(msg: str) -> None:
  print(msg, flush=True)


def l2_grid(cfg: ml_collections.ConfigDict) -> np.ndarray:
  """The probe's L2 grid from ``cfg.l2_grid_size``, ``l2_min``, ``l2_max``."""
  return linear.default_l2_grid(cfg.l2_grid_size, cfg.l2_min, cfg.l2_max)


def _train_once(tcfg, run: train.Setup, train_ds, test_ds, workdir: str, mesh) -> dict:
  """`finetune.fit` unless ``workdir`` already holds a finished run (then reused)."""
  summary_path = os.path.join(workdir, "summary.json")
  if os.path.exists(summary_path):
    _say(f"reusing the finished run in {workdir}")
    import json
    with open(summary_path) as f:
      return json.load(f)
  return finetune.fit(tcfg, run, train_ds, test_ds, workdir, mesh)


# ---------------------------------------------------------------------------
# Fine-grained structure (004).
# ---------------------------------------------------------------------------


def fine_grained_study(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Coarse-label training, class distances over epochs, t-SNE views and CLP.

  Args:
    config: see ``configs/fine_grained_mnist.py`` (``train`` is a trainer
      config; ``num_coarse``, ``analysis_epochs``, ``analysis_train_examples``,
      ``clp`` and ``probe`` drive the analysis).
    workdir: output folder; the coarse training run goes to ``workdir/coarse``.

  Returns:
    The summary: coarse test accuracy, MSDR by epoch, CLP and true-label
    linear-probe accuracies on the original test classes.

  References:
    Paper 004 secs 4.1-4.3 (Figs 3-12); SPEC.md lines 55-58.
  """
  wd = Workdir(workdir)
  wd.write_config(config)
  tcfg = config.train
  mesh = input_lib.make_mesh()
  fine_train, fine_test = input_lib.load_data(tcfg)
  num_fine = fine_train.num_classes
  f2c = data.mod_coarse_map(num_fine, config.num_coarse)
  train_ds = data.to_coarse(fine_train, num_coarse=config.num_coarse)
  test_ds = data.to_coarse(fine_test, num_coarse=config.num_coarse)

  run = train.setup(tcfg, train_ds, mesh)
  template = run._replace(state=jax.tree.map(ocp.utils.to_shape_dtype_struct, run.state))
  graphdef = run.evaluate.graphdef
  initial = nnx.merge(graphdef, *jax.device_get((run.state["params"], run.state["rest"])))
  coarse_dir = os.path.join(workdir, "coarse")
  _say(f"training on {config.num_coarse} coarse labels -> {coarse_dir}")
  coarse = _train_once(tcfg, run, train_ds, test_ds, coarse_dir, mesh)

  rng = np.random.default_rng(tcfg.seed)
  n_sub = min(config.analysis_train_examples or len(train_ds), len(train_ds))
  sub = np.sort(rng.choice(len(train_ds), n_sub, replace=False))
  sub_ds = train_ds.subset(sub)
  normalize = finetune.normalizer(train_ds)
  saved = set(finetune.checkpoint_epochs(coarse_dir))
  missing = [e for e in config.analysis_epochs if e and e not in saved]
  if missing:
    raise ValueError(f"no checkpoint for analysis epochs {missing} (saved: {sorted(saved)});"
                     " set train.checkpoint_every / keep_checkpoints to keep them")

  distances, msdr, feats = {}, {}, {}
  for epoch in sorted(config.analysis_epochs):
    model = initial if epoch == 0 else finetune.restore(coarse_dir, template, epoch=epoch)[0]
    for split, ds in (("train", sub_ds), ("test", test_ds)):
      h = finetune.extract_features(model, ds, normalize=normalize,
                                    batch_size=tcfg.eval_batch_size)["penultimate"]
      d = np.asarray(metrics.class_distance_matrix(h, ds.fine_labels, num_classes=num_fine))
      m = float(metrics.msdr(d, f2c))
      wd.log(dict(epoch=epoch, split=split, layer="penultimate", msdr=m,
                  class_distances=d))
      if split == "train":
        distances[epoch], msdr[epoch] = d, m
      feats[split] = h
    _say(f"epoch {epoch}: train MSDR {msdr[epoch]:.4g}")

  # Probes on the last analysed epoch's features.
  grid = l2_grid(config.probe)
  last = max(config.analysis_epochs)
  probe_kw = dict(l2_grid=grid, val_fraction=config.probe.val_fraction,
                  max_iters=config.probe.max_iters)
  lpo = linear.linear_probe(feats["train"], sub_ds.fine_labels, feats["test"],
                            test_ds.fine_labels, num_classes=num_fine, seed=tcfg.seed,
                            **probe_kw)
  _say(f"linear probe with the true {num_fine} labels: {lpo.top1:.4f}")
  c = config.clp
  res = clp_lib.cluster_and_linear_probe(
      feats["train"], sub_ds.labels, feats["test"], test_ds.fine_labels,
      fine_to_coarse=f2c, embedding=c.embedding,
      max_per_superclass=c.max_per_superclass or None, train_fine_labels=sub_ds.fine_labels,
      seed=tcfg.seed, perplexity=c.perplexity, kmeans_restarts=c.kmeans_restarts,
      num_threads=c.num_threads or None, **probe_kw)
  _say(f"CLP: {res.accuracy:.4f} (train label reconstruction {res.reconstruction_accuracy:.4f})")

  names = fine_train.class_names
  plots.distance_heatmaps(wd.file("class_distances.png"), distances, fine_to_coarse=f2c,
                          class_names=names, msdr=msdr,
                          title=f"Class distances (train, penultimate) under {config.num_coarse}"
                                f" coarse labels, {fine_train.name}")
  fine_used = sub_ds.fine_labels[res.train_indices]
  coarse_used = sub_ds.labels[res.train_indices]
  plots.superclass_views(wd.file("tsne_superclasses.png"), res.embeddings,
                         {s: fine_used[coarse_used == s] for s in res.embeddings},
                         class_names=names,
                         title=f"{c.embedding} of each super-class at epoch {last}")
  accs = {f"coarse model\n({config.num_coarse}-way test)": coarse["test_accuracy"],
          f"CLP\n({num_fine}-way)": res.accuracy,
          f"linear probe,\ntrue labels ({num_fine}-way)": lpo.top1}
  plots.bars(wd.file("clp.png"), accs, title="Recovering the original classes")
  summary = dict(
      coarse_test_accuracy=coarse["test_accuracy"],
      coarse_train_accuracy=coarse["train_accuracy"],
      coarse_test_nc1=coarse.get("test_nc1"), coarse_train_nc1=coarse.get("train_nc1"),
      terminal_phase_epoch=coarse.get("terminal_phase_epoch"),
      msdr_by_epoch={str(e): v for e, v in msdr.items()},
      clp_accuracy=res.accuracy, clp_mean_per_class=res.mean_per_class,
      clp_reconstruction_accuracy=res.reconstruction_accuracy,
      clp_mapping=res.mapping, clp_l2=res.probe.l2,
      lpo_accuracy=lpo.top1, lpo_mean_per_class=lpo.mean_per_class, lpo_l2=lpo.l2,
      analysis_epoch=last, analysis_train_examples=n_sub,
      clp_train_examples=len(res.train_indices))
  wd.write_summary(summary)
  return summary


# ---------------------------------------------------------------------------
# Transfer (000, 001).
# ---------------------------------------------------------------------------


def _pretrain(config, workdir: str) -> str:
  if config.pretrain_workdir:
    return config.pretrain_workdir
  pdir = os.path.join(workdir, "pretrain")
  if not os.path.exists(os.path.join(pdir, "summary.json")):
    _say(f"pretraining -> {pdir}")
    train.train_and_evaluate(config.pretrain, pdir)
  return pdir


def transfer_study(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Pretrain, then probe and fine-tune on a downstream set.

  Args:
    config: see ``configs/transfer.py`` (``pretrain`` and ``downstream`` are
      trainer configs; ``variants``, ``blocks``, ``probe`` drive the rest).
    workdir: output folder (``pretrain/`` and ``finetune/<variant>_<block>/``
      hold the trainer runs).

  Returns:
    The summary: per-layer probe accuracies and downstream NC1, their
    Spearman / Pearson correlation, MLOG and each fine-tuning variant's test
    accuracy.

  References:
    Paper 000 sec 6.3 (L-BFGS probes, MLOG); paper 001 secs 3.2-3.3
    (downstream NC1 vs transfer accuracy, layer / SCL / full fine-tuning);
    SPEC.md lines 64-65.
  """
  wd = Workdir(workdir)
  wd.write_config(config)
  mesh = input_lib.make_mesh()
  pdir = _pretrain(config, workdir)
  pre_acc = train.summarize(Workdir(pdir).read_metrics())["test_accuracy"]
  model, _, pre_ds = finetune.load_pretrained(pdir, mesh=mesh)
  down_train, down_test = input_lib.load_data(config.downstream)
  normalize = finetune.normalizer(pre_ds)
  num_classes = down_train.num_classes

  # ---- Frozen features: layer-wise probes and downstream collapse.
  layers = tuple(k for k in models.feature_names(model) if k != "projection")
  bs = config.downstream.eval_batch_size
  h_train = finetune.extract_features(model, down_train, normalize=normalize, layers=layers,
                                      batch_size=bs)
  h_test = finetune.extract_features(model, down_test, normalize=normalize, layers=layers,
                                     batch_size=bs)
  grid = l2_grid(config.probe)
  probes_by_layer = linear.layerwise_probe(
      h_train, down_train.labels, h_test, down_test.labels, num_classes=num_classes,
      l2_grid=grid, val_fraction=config.probe.val_fraction, max_iters=config.probe.max_iters,
      seed=config.downstream.seed)
  nc1 = {}
  for layer in layers:
    m = metrics.class_moments(h_train[layer], down_train.labels, num_classes=num_classes)
    nc1[layer] = float(metrics.nc1(m))
    r = probes_by_layer[layer]
    wd.log(dict(part="layerwise_probe", layer=layer, probe_top1=r.top1,
                probe_mean_per_class=r.mean_per_class, probe_l2=r.l2,
                downstream_train_nc1=nc1[layer], downstream_train_vci=float(metrics.vci(m))))
    _say(f"probe {layer}: {r.top1:.4f} (downstream NC1 {nc1[layer]:.4g})")
  acc = np.array([probes_by_layer[k].top1 for k in layers])
  x_nc1 = np.array([nc1[k] for k in layers])
  plot_curves(wd.file("layerwise.png"), np.arange(len(layers)),
              {"probe top-1": acc, "downstream NC1 / max": x_nc1 / x_nc1.max()},
              xlabel="layer (" + ", ".join(layers) + ")",
              title="Layer-wise linear probes (frozen features)")
  pen = probes_by_layer["penultimate"].top1

  # ---- Fine-tuning variants.
  results = {"L-BFGS probe": pen}
  for variant in config.variants:
    for block in (config.blocks if variant in ("layer", "scl") else (None,)):
      name = variant if block is None else f"{variant}_{block}"
      fresh, _, _ = finetune.load_pretrained(pdir, mesh=mesh)
      net = finetune.build_model(fresh, variant=variant, block=block,
                                 num_classes=num_classes,
                                 input_shape=down_train.images.shape[1:],
                                 rngs=nnx.Rngs(config.downstream.seed))
      paths = finetune.trainable_paths(net, variant=variant, block=block)
      run = finetune.setup(config.downstream, net, down_train, mesh, paths=paths,
                           stats_ds=pre_ds)
      s = _train_once(config.downstream, run, down_train, down_test,
                      os.path.join(workdir, "finetune", name), mesh)
      results[name] = s["test_accuracy"]
      wd.log(dict(part="finetune", variant=variant, block=block, test_accuracy=s["test_accuracy"],
                  train_accuracy=s["train_accuracy"], trained_params=s["num_params"],
                  train_nc1=s.get("train_nc1"), test_nc1=s.get("test_nc1")))
      _say(f"{name}: test accuracy {s['test_accuracy']:.4f}")
  plots.bars(wd.file("finetune.png"), results,
             title=f"{pre_ds.name} -> {down_train.name}: probe and fine-tuning")
  summary = dict(
      pretrain_test_accuracy=pre_acc,
      probe_top1_by_layer={k: probes_by_layer[k].top1 for k in layers},
      probe_l2_by_layer={k: probes_by_layer[k].l2 for k in layers},
      downstream_nc1_by_layer=nc1,
      spearman_nc1_vs_probe=float(correlation.spearman(x_nc1, acc)),
      pearson_nc1_vs_probe=float(correlation.pearson(np.log(x_nc1), acc)),
      mlog=float(correlation.mlog(np.array([pen]), pre_acc)),
      finetune_test_accuracy=results)
  wd.write_summary(summary)
  return summary
