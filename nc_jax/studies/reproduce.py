"""The reproduction contract (``../shared/REPRODUCTIONS.md``): one command per paper.

``experiments/reproduce.py --config=configs/papers/<id>.py[:runlocal|:gpu]
--workdir=DIR [--config.only=RUN]`` calls `reproduce`, which

1. asks the paper's module (``nc_jax.studies.papers.<id>``) for its runs
   (`Run` list: a grid of overrides x seeds) and executes them with the
   sweep runner (finished runs are skipped, so a killed study resumes);
2. with ``only=RUN``: runs just that run (and what it depends on) into
   ``DIR/runs/RUN``, writes ``DIR/results.json`` with that run under
   ``runs`` and no claims, and prints its final numbers;
3. otherwise asks the module to analyse the runs into `Claim`s (each with
   the criterion fixed in the module before any run, the evidence computed
   from the runs, and the verdict computed from both), and writes
   ``DIR/results.json`` and ``DIR/report.md`` (rendered from results.json)
   next to the figures.

A paper module defines ``PAPER`` (its number, ``'004'``), ``TITLE``,
``plan(config, workdir) -> list[Run]`` and
``analyze(config, workdir, records) -> list[Claim]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Mapping
from typing import Any

from nc_jax.studies import sweep
from nc_jax.workdir import Workdir, to_python

VERDICTS = ('reproduced', 'not reproduced', 'inconclusive')


@dataclasses.dataclass
class Claim:
  """One headline claim of a paper and what our runs say about it."""

  id: str  # '004a'
  claim: str  # One sentence: the paper's claim.
  paper: str  # What the paper shows and where (figure/table, model, data).
  setting: str  # What we ran instead, and why.
  criterion: str  # The test applied to our numbers, fixed before the run.
  verdict: str  # One of VERDICTS, computed by `verdict`.
  evidence: dict[str, Any]  # The numbers the criterion reads.
  figures: list[str] = dataclasses.field(default_factory=list)
  notes: str = ''  # Likely reasons when not reproduced; caveats.


def verdict(checks: Mapping[str, bool | None]) -> str:
  """'reproduced' if every check holds, 'not reproduced' if one fails.

  A check of None (the evidence could not be measured, e.g. a run never
  reached 100% train accuracy) makes the verdict 'inconclusive' unless
  another check failed.
  """
  values = list(checks.values())
  if any(v is False for v in values):
    return 'not reproduced'
  if any(v is None for v in values):
    return 'inconclusive'
  return 'reproduced'


def paper_module(study: str):
  return importlib.import_module(f'nc_jax.studies.papers.{study}')


def reproduce(config, workdir: str, *, command: str = '',
              say=print) -> dict[str, Any]:
  """Runs a paper's study and writes results.json and report.md (see above).

  Args:
    config: a ``configs/papers/<id>.py`` config (``study``, ``variant``,
      ``only`` and the study's own keys).
    workdir: the study's folder.
    command: the command line, recorded in results.json.
    say: progress messages.
  """
  module = paper_module(config.study)
  runs = module.plan(config, workdir)
  wd = Workdir(workdir)
  records = sweep.run_all(runs, workdir, only=config.only, say=say)
  results = dict(paper=module.PAPER, title=module.TITLE, variant=config.variant,
                 command=command, config=to_python(config))
  if config.only:
    results.update(claims={}, runs={config.only: records[config.only]})
    wd.write_json('results.json', results)
    say(f'{config.only}: ' + json.dumps(records[config.only]['final'],
                                         sort_keys=True))
    return results
  claims = module.analyze(config, workdir, records)
  for c in claims:
    if c.verdict not in VERDICTS:
      raise ValueError(f'claim {c.id}: verdict {c.verdict!r} not in {VERDICTS}')
  results.update(claims={c.id: dataclasses.asdict(c) for c in claims},
                 runs=records)
  wd.write_json('results.json', results)
  with open(wd.file('report.md'), 'w') as f:
    f.write(render_report(results))
  for c in claims:
    say(f'{c.id}: {c.verdict}')
  return results


def _fmt(v: Any) -> str:
  if isinstance(v, float):
    return f'{v:.4g}'
  if isinstance(v, (list, tuple)):
    if len(v) > 12:
      return '[' + ', '.join(_fmt(x) for x in v[:12]) + ', ...]'
    return '[' + ', '.join(_fmt(x) for x in v) + ']'
  if isinstance(v, dict):
    return '{' + ', '.join(f'{k}: {_fmt(x)}' for k, x in v.items()) + '}'
  return str(v)


def render_report(results: Mapping[str, Any]) -> str:
  """report.md from results.json: the claims table, then a section per claim."""
  lines = [f"# Paper {results['paper']}: {results['title']}", '',
           f"Variant: `{results['variant']}`. Command:", '', '```',
           results['command'] or '(not recorded)', '```', '',
           'Every number below is read from `results.json`, written by the '
           'command above; verdicts are computed by code from the evidence '
           'with the criterion stated for each claim.', '',
           '| claim | verdict | in one sentence |', '|---|---|---|']
  claims = results['claims']
  for cid, c in claims.items():
    lines.append(f"| [{cid}](#{cid}) | **{c['verdict']}** | {c['claim']} |")
  for cid, c in claims.items():
    lines += ['', f"## {cid}", '', f"**Claim.** {c['claim']}", '',
              f"**Paper.** {c['paper']}", '', f"**What we ran.** {c['setting']}",
              '', f"**Criterion (fixed before the run).** {c['criterion']}", '',
              f"**Verdict: {c['verdict']}.**", '']
    if c['evidence']:
      lines += ['| evidence | value |', '|---|---|']
      lines += [f'| {k} | {_fmt(v)} |' for k, v in c['evidence'].items()]
      lines.append('')
    if c.get('notes'):
      lines += [c['notes'], '']
    lines += [f'![{fig}]({fig})' for fig in c['figures']]
  runs = results.get('runs', {})
  if runs:
    lines += ['', '## Runs', '',
              '| run | seed | overrides | seconds |', '|---|---|---|---|']
    for name, r in runs.items():
      lines.append(f"| {name} | {r['seed']} | {_fmt(r['overrides'])} | "
                   f"{r['seconds']:.0f} |")
    lines += ['', 'Rerun one: add `--config.only=<run>` to the command; with '
              'the same seed its final numbers equal the recorded ones.']
  return '\n'.join(lines) + '\n'


def summary_table(results_paths) -> str:
  """A markdown table of every claim's verdict, read from results.json files.

  ``python -m nc_jax.studies.reproduce docs/reproductions/*/results.json``
  prints it (the README's table of reproductions is this output).
  """
  lines = ['| paper | claim | verdict |', '|---|---|---|']
  for path in results_paths:
    with open(path) as f:
      r = json.load(f)
    report = os.path.join(os.path.dirname(path), 'report.md')
    for cid, c in r['claims'].items():
      lines.append(f"| [{r['paper']}]({report}#{cid}) | {cid}: {c['claim']} | "
                   f"**{c['verdict']}** |")
  return '\n'.join(lines)


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  print(summary_table(sys.argv[1:]))
