"""Speed and memory of the collapse report: against one GEMM and the reference library.

    .venv/bin/python benchmarks/bench_metrics.py [--quick] [--write] [--tag TAG]
    bash benchmarks/setup_reference.sh && .venv-ref/bin/python benchmarks/bench_metrics.py --write

Each case is float32 features (random class means plus unit noise, uniform
random labels) with a random classifier, and everything below is measured in
one run of this script, so the ratios share the machine's state:

- ``gemm``: a bare jitted ``X.T @ X`` on the same array (best of ``--repeats``).
- ``floor``: ``gemm`` plus a bare jitted ``argmax(X @ [W; M]^T)``, the N x p x 2K
  product NC4 cannot avoid: the least time any full report can take here.
- ``report``: `metrics.collapse_report` with the classifier (every SPEC.md key,
  numerical_rank and nc4 included), input checks included; ``report_nocls``
  without the classifier (no NC4 product).
- ``stream``: `metrics.accumulate` over batches of ``B`` rows, pooled and
  per-class layouts, in samples/s, against the bare GEMM over the same batches.
- ``temp``: XLA's compiled temporaries of the report, in multiples of the
  input's N x p floats (what the report needs above its input).
- ``reference``: the full pipeline of rhubarbwu/neural-collapse (its
  accumulators for means, covariance, variance norms and NC4 decisions, then
  covariance_ratio, variability_cdnv, simplex_etf_error, kernel_stats with the
  log kernel, self_duality_error, similarities, clf_ncc_agreement), in PyTorch
  on the same data, given all of it as one batch (its fastest use). It is
  never a dependency: where ``neural_collapse`` cannot be imported (see
  benchmarks/setup_reference.sh) the column says so.

``--write`` adds this run to benchmarks/results_metrics.json (keyed by
``--tag``) and renders benchmarks/results_metrics.md from every run there,
each with its verdicts against issue 14's targets (`TARGETS`); ``--readme``
also puts this run's tables between the README's bench_metrics markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import metrics
from nc_jax.metrics import report as report_lib

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results_metrics.json")


def best_time(fn, *args, repeats=5):
  jax.block_until_ready(fn(*args))  # compile + warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return min(times)


def make_case(n, p, k, seed=0):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, k, n).astype(np.int32)
  x = (rng.normal(size=(k, p))[y] + rng.normal(size=(n, p))).astype(np.float32)
  w = rng.normal(size=(k, p)).astype(np.float32)
  b = rng.normal(size=k).astype(np.float32)
  return x, y, w, b


def reference_pipeline(x, y, w, k):
  """rhubarbwu/neural-collapse's metrics as its README runs them, all data as one batch."""
  import torch as pt
  from neural_collapse.accumulate import (CovarAccumulator, DecAccumulator, MeanAccumulator,
                                          VarNormAccumulator)
  from neural_collapse.kernels import kernel_stats, log_kernel
  from neural_collapse.measure import (clf_ncc_agreement, covariance_ratio, self_duality_error,
                                       similarities, simplex_etf_error, variability_cdnv)
  d = x.shape[1]
  mean_acc = MeanAccumulator(k, d, "cpu")
  mean_acc.accumulate(x, y)
  means, m_g = mean_acc.compute()
  var_acc = VarNormAccumulator(k, d, "cpu", M=means)
  cov_acc = CovarAccumulator(k, d, "cpu", M=means)
  var_acc.accumulate(x, y, means)
  cov_acc.accumulate(x, y, means)
  var_norms, _ = var_acc.compute()
  covar_within = cov_acc.compute()
  dec_acc = DecAccumulator(k, d, "cpu", M=means, W=w)
  dec_acc.accumulate(x, y, w, means)
  with pt.no_grad():
    return {
        "nc1_pinv": covariance_ratio(covar_within, means, m_g),
        "nc1_cdnv": variability_cdnv(var_norms, means),
        "nc2_etf_err": simplex_etf_error(means, m_g),
        "nc2g_log": kernel_stats(means, m_g, kernel=log_kernel)[1],
        "nc3_dual_err": self_duality_error(w, means, m_g),
        "nc3u_uni_dual": similarities(w, means, m_g).var().item(),
        "nc4_agree": clf_ncc_agreement(dec_acc),
    }


def time_reference(x, y, w, k, repeats):
  try:
    import torch as pt
    import neural_collapse  # noqa: F401
  except ImportError as e:
    return None, f"not importable here ({e.name}); see benchmarks/setup_reference.sh"
  xt, yt, wt = pt.from_numpy(x), pt.from_numpy(y.astype(np.int64)), pt.from_numpy(w)
  reference_pipeline(xt, yt, wt, k)  # warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    reference_pipeline(xt, yt, wt, k)
    times.append(time.perf_counter() - t)
  return min(times), f"torch {pt.__version__}, {pt.get_num_threads()} threads"


def stream_rate(x, y, k, batch, pooled, repeats=2):
  nb = x.shape[0] // batch
  xs = [x[i * batch:(i + 1) * batch] for i in range(nb)]
  ys = [y[i * batch:(i + 1) * batch] for i in range(nb)]
  counts = np.bincount(np.asarray(y)[:nb * batch], minlength=k) if pooled else None

  def run():
    st = metrics.accumulate(xs[0], ys[0], num_classes=k, class_counts=counts)
    for a, l in zip(xs[1:], ys[1:]):
      st = metrics.accumulate(a, l, num_classes=k, stats=st)
    return st

  gemm = jax.jit(lambda a: a.T @ a)
  t_stream = best_time(run, repeats=repeats)
  t_gemm = best_time(lambda: [gemm(a) for a in xs], repeats=repeats)
  return nb * batch / t_stream, nb * batch / t_gemm


def run_case(n, p, k, *, batches, repeats, with_reference):
  x_np, y_np, w_np, b_np = make_case(n, p, k)
  x, y, w, b = map(jnp.asarray, (x_np, y_np, w_np, b_np))
  m = metrics.class_moments(x, y, num_classes=k)
  wm = jnp.concatenate([w, metrics.centred_means(m)])
  gemm = jax.jit(lambda a: a.T @ a)
  nc4_product = jax.jit(lambda a, wm: jnp.argmax(a @ wm.T, axis=1))
  out = dict(n=n, p=p, k=k, input_mib=x_np.nbytes / 2**20)
  out["gemm_s"] = best_time(gemm, x, repeats=repeats)
  out["nc4_product_s"] = best_time(nc4_product, x, wm, repeats=repeats)
  out["floor_s"] = out["gemm_s"] + out["nc4_product_s"]
  full = lambda: metrics.collapse_report(x, y, num_classes=k, classifier=(w, b))
  out["report_s"] = best_time(full, repeats=repeats)
  out["report_nocls_s"] = best_time(
      lambda: metrics.collapse_report(x, y, num_classes=k), repeats=repeats)
  compiled = jax.jit(lambda a, l, w, b: report_lib._report(
      a, l, (w, b), None, num_classes=k, rank=None, rtol=None)).lower(x, y, w, b).compile()
  mem = compiled.memory_analysis()
  out["temp_mib"] = None if mem is None else mem.temp_size_in_bytes / 2**20
  out["stream"] = []
  for batch in batches:
    for pooled in (True, False):
      rate, gemm_rate = stream_rate(x, y, k, batch, pooled)
      out["stream"].append(dict(batch=batch, layout="pooled" if pooled else "per-class",
                                samples_per_s=rate, gemm_samples_per_s=gemm_rate))
  if with_reference:
    out["reference_s"], out["reference"] = time_reference(x_np, y_np, w_np, k,
                                                          max(2, repeats // 2))
  report = full()
  out["check"] = {key: float(report[key]) for key in ("nc1", "cdnv", "nc4_ncc_mismatch")}
  return out


def fmt_ratio(a, b):
  return "n/a" if a is None or b is None else f"{a / b:.2f}"


# Issue 14's targets, fixed before any run: (name, case (N, p, K) or None for
# every case, how the measured figure is computed, comparison, threshold).
TARGETS = (
    ("report / GEMM", (50_000, 512, 100), lambda c: c["report_s"] / c["gemm_s"], "<=", 1.6),
    ("reference / report", (50_000, 512, 100),
     lambda c: c["reference_s"] / c["report_s"] if c.get("reference_s") else None, ">=", 3.0),
    ("reference / report", (20_000, 256, 1000),
     lambda c: c["reference_s"] / c["report_s"] if c.get("reference_s") else None, ">=", 8.0),
    ("temporaries / input", None,
     lambda c: None if c["temp_mib"] is None else c["temp_mib"] / c["input_mib"], "<=", 2.0),
    ("pooled streaming / GEMM samples/s (worst batch)", None,
     lambda c: min(s["samples_per_s"] / s["gemm_samples_per_s"]
                   for s in c["stream"] if s["layout"] == "pooled"), ">=", 0.8),
    ("per-class / pooled streaming samples/s (worst batch)", None,
     lambda c: min(s["samples_per_s"] / p["samples_per_s"]
                   for s in c["stream"] if s["layout"] == "per-class"
                   for p in c["stream"] if p["layout"] == "pooled" and p["batch"] == s["batch"]),
     ">=", 0.5),
)


def verdicts(run: dict) -> list[dict]:
  """Each target of issue 14 against this run: measured figure and whether it is met."""
  out = []
  for name, case, measure, op, threshold in TARGETS:
    for c in run["cases"]:
      if case is not None and (c["n"], c["p"], c["k"]) != case:
        continue
      value = measure(c)
      met = None if value is None else (value <= threshold if op == "<=" else value >= threshold)
      out.append(dict(target=f"{name} {op} {threshold:g}", case=(c["n"], c["p"], c["k"]),
                      measured=value, met=met))
  return out


def render_verdicts(run: dict) -> list[str]:
  lines = ["| target | N, p, K | measured | met |", "|---|---|---|---|"]
  for v in verdicts(run):
    n, p, k = v["case"]
    measured = "n/a" if v["measured"] is None else f"{v['measured']:.2f}"
    met = "not measured" if v["met"] is None else ("yes" if v["met"] else "**no**")
    lines.append(f"| {v['target']} | {n:,}, {p}, {k:,} | {measured} | {met} |")
  return lines


def render(runs: dict) -> str:
  lines = ["# Metric benchmark (benchmarks/bench_metrics.py)", "",
           "Rendered from results_metrics.json. Each run is one process; every ratio is between "
           "two timings of that run. `floor` = bare X^T X + bare argmax(X [W; M]^T) (the N x p x 2K "
           "product NC4 needs); `report` = `collapse_report` with the classifier (every SPEC.md "
           "key, input checks included); `reference` = rhubarbwu/neural-collapse's full pipeline "
           "(fewer metrics: no numerical_rank, vci, cosine or within_vb keys). Temporaries: XLA's "
           "compiled temporaries of the report in multiples of the input (N p floats).", ""]
  for tag, run in runs.items():
    env = run["env"]
    lines += [f"## {tag}", "",
              f"{env['device']}; jax {env['jax']}; {env['when']}; load average "
              f"{env['load_before']:.2f} before, {env['load_after']:.2f} after; "
              f"GLIBC_TUNABLES={env['glibc_tunables'] or '(unset)'}; reference: "
              f"{run['cases'][0].get('reference', 'not run')}."
              + (f" Code: {env['code']}." if env.get('code') else ''), "",
              "| N | p | K | GEMM (ms) | floor (ms) | floor / GEMM | report (ms) | report / GEMM "
              "| report / floor "
              "| report w/o classifier / GEMM | reference (ms) | reference / report "
              "| temporaries / input |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in run["cases"]:
      ref = c.get("reference_s")
      temp = "n/a" if c["temp_mib"] is None else f"{c['temp_mib'] / c['input_mib']:.2f}"
      lines.append(
          f"| {c['n']:,} | {c['p']} | {c['k']:,} | {1e3 * c['gemm_s']:.1f} "
          f"| {1e3 * c['floor_s']:.1f} | {fmt_ratio(c['floor_s'], c['gemm_s'])} "
          f"| {1e3 * c['report_s']:.1f} "
          f"| {fmt_ratio(c['report_s'], c['gemm_s'])} | {fmt_ratio(c['report_s'], c['floor_s'])} "
          f"| {fmt_ratio(c['report_nocls_s'], c['gemm_s'])} "
          f"| {'n/a' if ref is None else round(1e3 * ref)} | {fmt_ratio(ref, c['report_s'])} "
          f"| {temp} |")
    lines += ["", "| N | p | K | batch | layout | accumulate samples/s | bare GEMM samples/s "
              "(same batches) | ratio | per-class / pooled |", "|---|---|---|---|---|---|---|---|---|"]
    for c in run["cases"]:
      pooled = {s["batch"]: s["samples_per_s"] for s in c["stream"] if s["layout"] == "pooled"}
      for s in c["stream"]:
        rel = "" if s["layout"] == "pooled" else f"{s['samples_per_s'] / pooled[s['batch']]:.2f}"
        lines.append(
            f"| {c['n']:,} | {c['p']} | {c['k']:,} | {s['batch']:,} | {s['layout']} "
            f"| {s['samples_per_s']:,.0f} | {s['gemm_samples_per_s']:,.0f} "
            f"| {s['samples_per_s'] / s['gemm_samples_per_s']:.2f} | {rel} |")
    lines += ["", "Against issue 14's targets:", ""] + render_verdicts(run)
    lines.append("")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
  parser.add_argument("--write", action="store_true", help="record in results_metrics.json/.md")
  parser.add_argument("--tag", default=None, help="name of this run in the results file")
  parser.add_argument("--code", default="",
                      help="what code was measured (a commit), recorded with the run")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--no-reference", action="store_true")
  parser.add_argument("--readme", action="store_true",
                      help="with --write: put this run's tables in README.md")
  parser.add_argument("--render-only", action="store_true",
                      help="re-render results_metrics.md (and, with --readme, the README "
                           "section from the run --tag) from results_metrics.json; no timing")
  args = parser.parse_args()
  if args.render_only:
    runs = json.load(open(RESULTS))
    with open(os.path.join(HERE, "results_metrics.md"), "w") as f:
      f.write(render(runs))
    if args.readme:
      write_readme(render({args.tag: runs[args.tag]}))
    return
  cases = [(4000, 64, 10)] if args.quick else [(50_000, 512, 100), (20_000, 256, 1000)]
  batches = (1024,) if args.quick else (1024, 8192)
  device = jax.devices()[0]
  env = dict(device=f"{device.platform}: {device.device_kind}, {os.cpu_count()} CPUs "
                    f"({platform.processor() or platform.machine()})",
             jax=jax.__version__, when=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
             glibc_tunables=os.environ.get("GLIBC_TUNABLES", ""),
             load_before=os.getloadavg()[0])
  if args.code:
    env["code"] = args.code
  results = []
  for n, p, k in cases:
    r = run_case(n, p, k, batches=batches, repeats=args.repeats,
                 with_reference=not args.no_reference)
    results.append(r)
    print(json.dumps(r), flush=True)
  env["load_after"] = os.getloadavg()[0]
  run = dict(env=env, cases=results)
  tag = args.tag or f"{device.platform}" + ("-thp" if env["glibc_tunables"] else "")
  print(render({tag: run}))
  if args.write:
    runs = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    runs[tag] = run
    with open(RESULTS, "w") as f:
      json.dump(runs, f, indent=1)
    with open(os.path.join(HERE, "results_metrics.md"), "w") as f:
      f.write(render(runs))
    if args.readme:
      write_readme(render({tag: run}))


README = os.path.join(HERE, os.pardir, "README.md")
BEGIN, END = "<!-- bench_metrics: begin -->", "<!-- bench_metrics: end -->"


def write_readme(text: str):
  """Replaces the README's text between the bench_metrics markers with ``text``."""
  with open(README) as f:
    readme = f.read()
  if BEGIN not in readme or END not in readme:
    raise SystemExit(f"README.md lacks the markers {BEGIN} ... {END}")
  head, rest = readme.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  # Drop the rendered page's title: the README section has its own heading.
  body = text.split("\n", 2)[2] if text.startswith("# ") else text
  # Its run headings go below the README's "### Benchmark".
  body = "\n".join("#### " + l[3:] if l.startswith("## ") else l for l in body.splitlines())
  with open(README, "w") as f:
    f.write(f"{head}{BEGIN}\n{body.strip()}\n{END}{tail}")


if __name__ == "__main__":
  main()
