"""The reproduction contract (``../shared/REPRODUCTIONS.md``): one command per paper.

``experiments/reproduce.py --config=configs/papers/<id>.py[:runlocal|:gpu]
--workdir=DIR [--config.only=RUN]`` calls `reproduce`, which

1. asks the paper's module (``nc_jax.studies.papers.<id>``) for its runs
   (`sweep.Run` list, each with tags such as ``kind='size', seed=1``) and
   executes them with the sweep runner (finished runs are skipped, so a
   killed study resumes);
2. with ``only=RUN``: runs just that run (and what it depends on) into
   ``DIR/runs/RUN``, writes ``DIR/results.json`` with that run under
   ``runs`` and no claims, and prints its final numbers;
3. otherwise judges each of the module's claims (`ClaimSpec`) on a `Study`
   (the runs, their records and tags) and writes ``DIR/results.json`` and
   ``DIR/report.md`` (rendered from results.json) next to the figures.

A claim is judged in parts (`ClaimSpec`): ``evidence(study) -> dict`` (the
numbers, from the runs), ``gates(evidence, constants) -> {name: Gate}`` (the
preconditions the evidence needs: every run trained, the collapse the claim
is about happened, a change measured against the untrained network),
``checks(evidence, constants) -> {name: bool | None}`` (the claim itself),
``figure(evidence, study) -> [file names]``, and the text. The criterion
sentence is a format string over the same ``constants`` the gates and checks
read, so text and code cannot drift; the setting sentence is computed from
the variant's config. `assess` applies gates and checks to any evidence, so
each claim is unit tested on synthetic evidence.

A paper module defines ``PAPER`` (its number, ``'004'``), ``TITLE``,
``plan(config, workdir) -> list[Run]`` and ``CLAIMS`` (a list of
`ClaimSpec`); optionally ``HISTORY``, markdown saying what changed since an
earlier pass of the study and why (recorded in results.json, rendered in
report.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.workdir import Workdir, to_python

VERDICTS = ('reproduced', 'not reproduced', 'inconclusive')

_OPS = {'>=': operator.ge, '>': operator.gt, '<=': operator.le, '<': operator.lt}


@dataclasses.dataclass(frozen=True)
class Gate:
  """A precondition of a claim: ``value <op> threshold`` must hold.

  A value of None or NaN (not measurable, e.g. no run reached the accuracy
  the gate asks for) fails the gate.
  """

  value: float | None
  threshold: float
  op: str = '>='
  about: str = ''  # One line: what the gate guards against.

  def __post_init__(self):
    if self.op not in _OPS:
      raise ValueError(f'gate op {self.op!r} not in {tuple(_OPS)}')

  @property
  def ok(self) -> bool:
    if self.value is None or math.isnan(self.value):
      return False
    return bool(_OPS[self.op](self.value, self.threshold))

  def as_dict(self) -> dict[str, Any]:
    return dict(value=self.value, threshold=self.threshold, ok=self.ok, op=self.op,
                about=self.about)


def _number(value) -> float | None:
  return None if value is None else float(value)


def at_least(value, threshold, about: str = '') -> Gate:
  """Gate: ``value >= threshold`` (e.g. the smallest test accuracy of the runs read)."""
  return Gate(_number(value), float(threshold), '>=', about)


def at_most(value, threshold, about: str = '') -> Gate:
  """Gate: ``value <= threshold`` (e.g. the largest final train NC1 of the runs read)."""
  return Gate(_number(value), float(threshold), '<=', about)


def seeds_gate(n: int, minimum: int = spread.MIN_SEEDS) -> Gate:
  """Gate: a claim about a difference, order or trend reads >= ``minimum`` seeds."""
  return at_least(n, minimum, 'seeds per compared group (REPRODUCTIONS.md)')


def changed_gate(after, before, about: str = '', *, paired: bool = False) -> Gate:
  """Gate: ``after`` exceeds ``before`` by more than its noise (`spread.exceeds`).

  The value is the z-score of the difference (`spread.z_score`), the
  threshold `spread.Z`: e.g. trained MSDR against MSDR at initialisation, so
  that what the inputs alone give cannot pass a claim about training. For a
  fall, pass ``(before, after)``; ``paired`` when both are measured on the
  same seeds. Missing or non-finite values give a NaN z-score: the gate fails.
  """
  z = spread.z_score(after, before, paired=paired)
  return Gate(z, spread.Z, '>', about or 'z-score of (after - before)')


def finite_gate(values, about: str = '') -> Gate:
  """Gate: none of ``values`` (numbers, None for missing) is missing, NaN or inf."""
  bad = sum(not spread.finite([v]) for v in values)
  return at_most(bad, 0, about or 'values read that are missing, NaN or inf')


@dataclasses.dataclass
class Claim:
  """One headline claim of a paper and what our runs say about it (results.json)."""

  id: str  # '004a'
  claim: str  # One sentence: the paper's claim.
  paper: str  # What the paper shows and where (figure/table, model, data).
  setting: str  # What we ran instead, and why.
  criterion: str  # The test applied to our numbers, fixed before the run.
  verdict: str  # One of VERDICTS, computed by `verdict`.
  evidence: dict[str, Any]  # The numbers the criterion reads (and ``checks``).
  figures: list[str] = dataclasses.field(default_factory=list)
  notes: str = ''  # Likely reasons when not reproduced; caveats.
  gates: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _check_types(checks: Mapping[str, Any]) -> None:
  if not isinstance(checks, Mapping):
    raise TypeError(f'checks must be a mapping {{name: bool | None}}, got '
                    f'{type(checks).__name__} {checks!r}')
  for name, v in checks.items():
    if not (v is None or type(v) is bool):  # pylint: disable=unidiomatic-typecheck
      kind = f'{type(v).__module__}.{type(v).__qualname__}'.removeprefix('builtins.')
      raise TypeError(f'check {name!r} is {kind} {v!r}; a check must be a '
                      'Python bool or None (wrap NumPy comparisons in bool())')


def verdict(checks: Mapping[str, bool | None],
            gates: Mapping[str, Gate] | None = None) -> str:
  """The verdict of a claim from its gates and checks.

  'inconclusive' if a gate fails (whatever the checks say); else 'not
  reproduced' if a check is False; else 'inconclusive' if a check is None
  (the evidence could not be measured); else 'reproduced'.

  Raises:
    TypeError: a check that is not a Python bool or None (a NumPy bool
      would otherwise slip through ``is False``).
  """
  _check_types(checks)
  if gates and not all(g.ok for g in gates.values()):
    return 'inconclusive'
  values = list(checks.values())
  if any(v is False for v in values):
    return 'not reproduced'
  if any(v is None for v in values):
    return 'inconclusive'
  return 'reproduced'


@dataclasses.dataclass(frozen=True)
class Study:
  """A paper's runs as a claim reads them: plan, records and tags.

  ``study.where(kind='size', seed=1)`` selects runs by their tags; claims
  never parse or rebuild run names.
  """

  config: Any
  workdir: str
  runs: Sequence[sweep.Run]
  records: Mapping[str, Mapping[str, Any]]

  def where(self, **tags) -> list[sweep.Result]:
    """The finished runs whose tags include ``tags``, in plan order."""
    return sweep.where(self.runs, self.records, self.workdir, **tags)

  def one(self, **tags) -> sweep.Result:
    """The single finished run with ``tags`` (LookupError if not exactly one)."""
    found = self.where(**tags)
    if len(found) != 1:
      raise LookupError(f'expected one run with tags {tags}, found '
                        f'{[r.name for r in found]}')
    return found[0]

  def file(self, name: str) -> str:
    return os.path.join(self.workdir, name)


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
  """A claim in parts (see the module docstring).

  Attributes:
    id: '004a'.
    claim: one sentence, the paper's claim.
    paper: what the paper shows and where.
    criterion: the test, a format string over ``constants``
      (``'MSDR > {msdr_min}'``).
    constants: the thresholds the gates and checks read, fixed before the run.
    evidence: ``study -> dict`` of JSON-able numbers.
    gates: ``(evidence, constants) -> {name: Gate}``.
    checks: ``(evidence, constants) -> {name: bool | None}``.
    setting: ``config -> str``: what we ran, computed from the variant's config.
    figure: ``(evidence, study) -> [file names in the study's folder]``.
    notes: ``(evidence, config) -> str``: caveats, likely reasons.
  """

  id: str
  claim: str
  paper: str
  criterion: str
  constants: Mapping[str, Any]
  evidence: Callable[[Study], dict[str, Any]]
  gates: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Gate]]
  checks: Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, bool | None]]
  setting: Callable[[Any], str]
  figure: Callable[[Mapping[str, Any], Study], list[str]] | None = None
  notes: Callable[[Mapping[str, Any], Any], str] | None = None

  def criterion_text(self) -> str:
    return self.criterion.format(**self.constants)


@dataclasses.dataclass(frozen=True)
class Assessment:
  """What `assess` found: the gates, the checks and the verdict they give."""

  gates: dict[str, Gate]
  checks: dict[str, bool | None]
  verdict: str

  @property
  def failed_gates(self) -> list[str]:
    """The names of the gates that failed, sorted."""
    return sorted(n for n, g in self.gates.items() if not g.ok)


def assess(spec: ClaimSpec, evidence: Mapping[str, Any]) -> Assessment:
  """Gates, checks and verdict of ``spec`` on ``evidence`` (real or synthetic)."""
  gates = dict(spec.gates(evidence, spec.constants))
  for name, g in gates.items():
    if not isinstance(g, Gate):
      raise TypeError(f'{spec.id}: gate {name!r} is {type(g).__name__}, not a Gate')
  checks = dict(spec.checks(evidence, spec.constants))
  return Assessment(gates, checks, verdict(checks, gates))


def judge(spec: ClaimSpec, study: Study) -> Claim:
  """Evidence from the study, then gates, checks, verdict, figures and text."""
  evidence = dict(spec.evidence(study))
  a = assess(spec, evidence)
  figures = list(spec.figure(evidence, study)) if spec.figure else []
  notes = spec.notes(evidence, study.config) if spec.notes else ''
  failed = [f'{n} (not measured)' if g.value is None or math.isnan(g.value)
            else f'{n} ({g.value:.4g} {g.op} {g.threshold:g} fails)'
            for n, g in a.gates.items() if not g.ok]
  if failed:
    notes = (f"Inconclusive: gate{'s' if len(failed) > 1 else ''} "
             f"{'; '.join(failed)}. {notes}").strip()
  return Claim(id=spec.id, claim=spec.claim, paper=spec.paper,
               setting=spec.setting(study.config), criterion=spec.criterion_text(),
               verdict=a.verdict, evidence=dict(checks=a.checks, **evidence),
               figures=figures, notes=notes,
               gates={n: g.as_dict() for n, g in a.gates.items()})


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
  if getattr(module, 'HISTORY', ''):
    results['history'] = module.HISTORY
  if config.only:
    results.update(claims={}, runs={config.only: records[config.only]})
    wd.write_json('results.json', results)
    say(f'{config.only}: ' + json.dumps(records[config.only]['final'],
                                         sort_keys=True))
    return results
  study = Study(config=config, workdir=workdir, runs=runs, records=records)
  say(f'judging claims {", ".join(s.id for s in module.CLAIMS)}')
  claims = [judge(spec, study) for spec in module.CLAIMS]
  results.update(claims={c.id: dataclasses.asdict(c) for c in claims},
                 runs=records)
  wd.write_json('results.json', results)
  with open(wd.file('report.md'), 'w') as f:
    f.write(render_report(results))
  for c in claims:
    say(f'{c.id}: {c.verdict}')
  return results


def _cell(text: str) -> str:
  """Text safe inside a markdown table cell."""
  return str(text).replace('|', '\\|').replace('\n', ' ')


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
  if results.get('history'):
    lines += ['', '## Since the first pass', '', results['history'].strip()]
  for cid, c in claims.items():
    lines += ['', f"## {cid}", '', f"**Claim.** {c['claim']}", '',
              f"**Paper.** {c['paper']}", '', f"**What we ran.** {c['setting']}",
              '', f"**Criterion (fixed before the run).** {c['criterion']}", '']
    if c.get('gates'):
      lines += ['Gates (preconditions; a failed gate makes the claim inconclusive):', '',
                '| gate | value | test | ok |', '|---|---|---|---|']
      lines += [f"| {n} | {_fmt(g['value'])} | {g.get('op', '>=')} {_fmt(g['threshold'])}"
                f"{' (' + _cell(g['about']) + ')' if g.get('about') else ''} | "
                f"{'yes' if g['ok'] else '**no**'} |" for n, g in c['gates'].items()]
      lines.append('')
    checks = c['evidence'].get('checks') if isinstance(c['evidence'], dict) else None
    if checks:
      lines += ['| check | holds |', '|---|---|']
      lines += [f"| {n} | {'n/a' if v is None else 'yes' if v else '**no**'} |"
                for n, v in checks.items()]
      lines.append('')
    lines += [f"**Verdict: {c['verdict']}.**", '']
    if c['evidence']:
      lines += ['| evidence | value |', '|---|---|']
      lines += [f'| {k} | {_cell(_fmt(v))} |' for k, v in c['evidence'].items()
                if k != 'checks']
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
