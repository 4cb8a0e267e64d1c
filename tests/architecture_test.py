"""The layout rules of docs/architecture.md, checked on the source tree.

Static checks (ast, no imports of the library but the light registry):
module sizes, packages instead of filename prefixes, no import cycle, which
layer imports which, the task seam (no module decides behaviour by comparing
a network kind or a target name with a string), where argparse lives and
where each file name is spelled. That configs load no framework is checked
by running them (configs_test.test_configs_import_no_framework).
"""

import ast
import collections
import pathlib
import re
from typing import Dict, Iterator, List, Set

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
LIBRARY = ('mmgenre_jax', 'input_pipeline')
MAX_LINES = 600
CORE = ('cosine', 'targets', 'ppmi_svd', 'losses', 'metrics', 'hierarchy')
# Modules directly in mmgenre_jax/ and in input_pipeline/ (the rest live in
# packages named after their family).
MAX_TOP_LEVEL_MODULES = 8
# A family of modules (prepare_*.py, beam_*.py) belongs in a package: no
# prefix is shared by this many modules of one directory.
MAX_SHARED_PREFIX = 3
# Network kinds, task names, target names and network names: what a network
# is and trains for is asked of objects (models/registry.py, core/targets.py,
# mmgenre_jax/tasks/), never decided by comparing one of these with a
# string outside the modules that define them (and the report, which states
# the paper's COSINE-vs-LOGISTIC finding).
SEAM_NAMES = {'alignment', 'fusion', 'network', 'label_prediction',
              'logistic', 'softmax', 'cosine', 'audio_cnn', 'msdi_audio_cnn',
              'text_mlp', 'timbre_mlp', 'resnet'}
SEAM_HOMES = ('mmgenre_jax/models/registry.py', 'mmgenre_jax/core/targets.py',
              'mmgenre_jax/tasks/__init__.py',
              'mmgenre_jax/reporting/report.py')
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


# ----------------------------------------------------------- packages


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


@pytest.mark.parametrize('package', LIBRARY)
def test_few_modules_directly_in_the_top_packages(package):
  top = sorted(p.name for p in (REPO / package).glob('*.py')
               if p.name != '__init__.py')
  assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_families_are_packages_not_filename_prefixes():
  crowded = []
  for directory in sorted({p.parent for p in _modules()}):
    stems = [p.stem for p in directory.glob('*.py') if p.stem != '__init__']
    prefixes = collections.Counter(s.split('_')[0] for s in stems if '_' in s)
    crowded += [f'{_relative(directory)}/{prefix}_*.py'
                for prefix, n in prefixes.items() if n >= MAX_SHARED_PREFIX]
    # A module named after a package beside it (tfds_data.py next to tfds/).
    crowded += [f'{_relative(directory)}/{stem}.py' for stem in stems
                if '_' in stem and (directory / stem.split('_')[0]).is_dir()]
  assert not crowded, f'families named by prefix: {crowded}'


def test_tests_mirror_the_packages():
  """tests/<package path>/ exists only for a package of the library."""
  stray = []
  for directory in sorted((REPO / 'tests').glob('*/**/')):
    relative = directory.relative_to(REPO / 'tests')
    if relative.parts[0] in LIBRARY and '__pycache__' not in relative.parts:
      if not (REPO / relative / '__init__.py').is_file():
        stray.append(str(relative))
  assert not stray, f'test folders of no package: {stray}'
  tested = {p.relative_to(REPO / 'tests').parts[0]
            for p in (REPO / 'tests').rglob('*_test.py')}
  assert set(LIBRARY) <= tested


# ------------------------------------------------------------- imports


def _imported_modules(path: pathlib.Path, modules: Set[str]) -> Set[str]:
  """The library modules a file imports, at any depth of the file.

  `from package import module` depends on that module (the package's
  __init__ is only its namespace); `from module import name` on the module.
  """
  found = set()
  for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [f'{node.module}.{alias.name}' if
               f'{node.module}.{alias.name}' in modules else node.module
               for alias in node.names]
    else:
      continue
    for name in names:
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name:
        found.add(name)
  return found


def _import_graph() -> Dict[str, Set[str]]:
  """Module -> the library modules it imports."""
  paths = {_module_name(p): p for p in _modules()}
  return {name: _imported_modules(path, set(paths)) - {name}
          for name, path in paths.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for other in graph[node]:
      if other not in index:
        visit(other)
        low[node] = min(low[node], low[other])
      elif other in on_stack:
        low[node] = min(low[node], index[other])
    if low[node] == index[node]:
      component = []
      while True:
        other = stack.pop()
        on_stack.discard(other)
        component.append(other)
        if other == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def test_no_import_cycle_inside_the_library():
  assert not _cycles(_import_graph())


def test_the_cycle_check_finds_a_cycle():
  assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [
      ['a', 'b', 'c']]


# --------------------------------------------------------------- the seam


def _seam_comparisons(path: pathlib.Path) -> List[str]:
  """`x == 'cosine'`-like comparisons (==, !=, in, not in) with a seam name."""
  found = []
  for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
    if not isinstance(node, ast.Compare):
      continue
    operands = [node.left, *node.comparators]
    literals = []
    for operand in operands:
      if isinstance(operand, (ast.Tuple, ast.List, ast.Set)):
        literals += [e.value for e in operand.elts
                     if isinstance(e, ast.Constant)]
      elif isinstance(operand, ast.Constant):
        literals.append(operand.value)
    hits = SEAM_NAMES.intersection(v for v in literals if isinstance(v, str))
    if hits:
      found.append(f'{path.name}:{node.lineno} {sorted(hits)}')
  return found


def test_no_string_comparison_of_kinds_or_targets_outside_their_homes():
  found = [f'{_relative(path)}: {hit}' for path in _modules()
           if _relative(path) not in SEAM_HOMES
           for hit in _seam_comparisons(path)]
  assert not found, found
  assert len(SEAM_HOMES) <= 4


def test_the_seam_check_sees_comparisons(tmp_path):
  probe = tmp_path / 'probe.py'
  probe.write_text("a = kind == 'fusion'\nb = t in ('cosine', 'x')\n"
                   "c = name != 'other'\n")
  assert [h.split(' ', 1)[1] for h in _seam_comparisons(probe)] == [
      "['fusion']", "['cosine']"]


def test_every_network_names_a_task_with_steps_evaluation_and_extraction():
  # Light: the registry imports no framework.
  from mmgenre_jax.models import registry  # pylint: disable=g-import-not-at-top
  tasks_dir = REPO / 'mmgenre_jax' / 'tasks'
  required = {'build_steps', 'evaluate_split', 'extract', 'collects_scores'}
  for name in {net.task for net in registry.NETWORKS.values()}:
    tree = ast.parse((tasks_dir / f'{name}.py').read_text(encoding='utf-8'))
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and
               any(ast.unparse(b) == 'base.Task' for b in n.bases)]
    assert len(classes) == 1, name
    methods = {f.name for f in classes[0].body
               if isinstance(f, ast.FunctionDef)}
    assert required <= methods, (name, required - methods)
    assert re.search(rf'^TASK = {classes[0].name}\(\)$',
                     ast.unparse(tree), re.M), name
