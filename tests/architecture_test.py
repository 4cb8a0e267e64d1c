"""The layout rules of docs/architecture.md, checked on the source tree.

Static checks (ast, no imports of the library): module sizes, which layer
imports which, where argparse lives and where each file name is spelled.
That configs load no framework is checked by running them
(configs_test.test_configs_import_no_framework).
"""

import ast
import pathlib
from typing import Dict, Iterator, List, Set

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = ('mmgenre_jax', 'input_pipeline')
MAX_LINES = 600
CORE = ('ops', 'ppmi_svd', 'losses', 'metrics', 'hierarchy')
# Each is spelled in exactly one module: its home (docs/architecture.md).
FILE_NAMES = {
    'pipeline.json': 'mmgenre_jax/workdir.py',
    'test_metrics.json': 'mmgenre_jax/workdir.py',
    'training_done.json': 'mmgenre_jax/workdir.py',
    'thresholds.json': 'mmgenre_jax/workdir.py',
    'manifest.json': 'input_pipeline/layout.py',
    'skipped.tsv': 'input_pipeline/layout.py',
}


def _modules() -> Iterator[pathlib.Path]:
  for package in LIBRARY:
    yield from sorted((REPO / package).rglob('*.py'))


def _imports(path: pathlib.Path) -> Set[str]:
  """Every module name an `import` or `from ... import` statement names."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
  return names


def _string_literals(path: pathlib.Path) -> List[str]:
  """String constants of the code (docstrings excluded)."""
  tree = ast.parse(path.read_text(encoding='utf-8'))
  docstrings = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)):
      body = node.body
      if (body and isinstance(body[0], ast.Expr) and
          isinstance(body[0].value, ast.Constant)):
        docstrings.add(id(body[0].value))
  return [node.value for node in ast.walk(tree)
          if isinstance(node, ast.Constant) and isinstance(node.value, str)
          and id(node) not in docstrings]


def _relative(path: pathlib.Path) -> str:
  return path.relative_to(REPO).as_posix()


def test_no_module_over_the_line_limit():
  long = {_relative(p): n for p in _modules()
          if (n := len(p.read_text(encoding='utf-8').splitlines()))
          > MAX_LINES}
  assert not long, f'modules over {MAX_LINES} lines: {long}'


def test_input_pipeline_never_imports_the_library():
  bad = {_relative(p): sorted(n for n in _imports(p)
                              if n.startswith('mmgenre_jax'))
         for p in (REPO / 'input_pipeline').rglob('*.py')}
  assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize('name', CORE)
def test_core_imports_neither_models_nor_data(name):
  names = _imports(REPO / 'mmgenre_jax' / 'core' / f'{name}.py')
  bad = sorted(n for n in names if n.startswith(
      ('mmgenre_jax.models', 'input_pipeline')))
  assert not bad, f'mmgenre_jax/core/{name}.py imports {bad}'
  assert 'mmgenre_jax.models' not in {n.rsplit('.', 1)[0] for n in names}


def test_argparse_only_in_cli():
  users = sorted(_relative(p) for p in _modules()
                 if 'argparse' in _imports(p))
  assert users and all(u.startswith('mmgenre_jax/cli/') for u in users), users


def test_each_file_name_is_spelled_in_one_module():
  homes: Dict[str, List[str]] = {name: [] for name in FILE_NAMES}
  for path in _modules():
    literals = _string_literals(path)
    for name in FILE_NAMES:
      if name in literals:
        homes[name].append(_relative(path))
  assert homes == {name: [home] for name, home in FILE_NAMES.items()}


def test_the_registry_is_the_one_list_of_networks():
  # No module but the registry keys a table by config.model.name values.
  names = ('audio_cnn', 'msdi_audio_cnn', 'text_mlp', 'timbre_mlp', 'resnet')
  tables = []
  for path in _modules():
    if _relative(path) == 'mmgenre_jax/models/registry.py':
      continue
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
      if isinstance(node, ast.Dict):
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        if len(keys & set(names)) >= 2:
          tables.append(f'{_relative(path)}:{node.lineno}')
  assert not tables, f'per-network tables outside the registry: {tables}'
