"""What every paper study's ``:runlocal`` run must write (REPRODUCTIONS.md).

Shared by the ``test_claims_p00X.py`` files, each of which runs its paper's
``:runlocal`` study once (one file per paper, so pytest-xdist's
``--dist loadfile`` spreads the five studies over its workers).
"""

import os

import pytest

from nc_jax.studies import reproduce


def paper_config(name, arg='runlocal'):
  import importlib
  if arg == 'runlocal':  # The studies read the real data sets.
    from nc_jax import data
    root = data.default_data_root()
    for sub in ('mnist', 'fashion_mnist', 'cifar10_jpeg'):
      if root is None or not (root / sub).is_dir():
        pytest.skip(f'REAL DATA MISSING: {sub}/ not found under the data root ({root}); '
                    'set NC_JAX_DATA_DIR or provide ../shared/data to run this test')
  return importlib.import_module(f'configs.papers.{name}').get_config(arg)


def check_claims(results, tmp_path, ids):
  """REPRODUCTIONS.md's fields of every claim, gates included, and the figures on disk."""
  assert set(results['claims']) == set(ids)
  for cid, claim in results['claims'].items():
    assert claim['verdict'] in reproduce.VERDICTS, cid
    for key in ('claim', 'paper', 'setting', 'criterion', 'evidence', 'gates'):
      assert claim[key], (cid, key)
    for name, gate in claim['gates'].items():
      assert {'value', 'threshold', 'ok'} <= set(gate), (cid, name)
      assert type(gate['ok']) is bool, (cid, name)  # pylint: disable=unidiomatic-typecheck
    if not all(g['ok'] for g in claim['gates'].values()):
      assert claim['verdict'] == 'inconclusive', cid
    for check in claim['evidence']['checks'].values():
      assert check is None or type(check) is bool, cid  # pylint: disable=unidiomatic-typecheck
    for fig in claim['figures']:
      assert os.path.exists(tmp_path / fig), fig
  report = (tmp_path / 'report.md').read_text()
  for cid in ids:
    assert f'## {cid}' in report
