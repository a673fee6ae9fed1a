"""Probes of frozen representations: linear probes, CLP, transfer summaries.

Quick use::

    from nc_jax import probes
    r = probes.linear_probe(h_train, y_train, h_test, y_test, num_classes=10)
    r.top1, r.mean_per_class, r.l2          # L-BFGS, L2 chosen on a val split
    probes.ridge_probe(...)                  # closed-form MSE probe
    probes.layerwise_probe({'layer1': ..., 'penultimate': ...}, y, {...}, yt,
                           num_classes=10)
    clp = probes.cluster_and_linear_probe(h_train, y_coarse, h_test, y_fine,
                                          fine_to_coarse=np.arange(10) % 5)
    probes.mlog(downstream_acc, pretrain_acc); probes.spearman(x, y)

Modules: `linear` (logistic / ridge probes), `solvers` (their jitted
L-BFGS / ridge fits), `clp` (Cluster-and-Linear-Probe,
Hungarian matching), `correlation` (MLOG, Pearson, Spearman), `plots`, and
`studies` (the fine-grained and transfer studies; it imports the trainer, so
it is not imported here).
"""

from nc_jax.probes.clp import (
    EMBEDDINGS, CLPResult, cluster_and_linear_probe, confusion_matrix, embed_2d,
    hungarian_match, matched_accuracy, reconstruct_labels)
from nc_jax.probes.correlation import logit, mlog, pearson, rankdata, spearman
from nc_jax.probes.linear import (
    ProbeResult, accuracies, default_l2_grid, fit_logistic, fit_ridge,
    layerwise_probe, linear_probe, ridge_loss, ridge_probe, stratified_split)

__all__ = [
    "CLPResult", "EMBEDDINGS", "ProbeResult", "accuracies",
    "cluster_and_linear_probe", "confusion_matrix", "default_l2_grid",
    "embed_2d", "fit_logistic", "fit_ridge", "hungarian_match",
    "layerwise_probe", "linear_probe", "logit", "matched_accuracy", "mlog",
    "pearson", "rankdata", "reconstruct_labels", "ridge_loss", "ridge_probe",
    "spearman", "stratified_split",
]
