"""Apache Beam PipelineOptions of a `--beam_pipeline_options K=V,...` flag.

  options = beam_options.pipeline_options(
      'runner=DirectRunner,direct_num_workers=2,'
      'direct_running_mode=multi_processing')
  beam_options.runner_name(options)   # 'DirectRunner'

Any runner's options go through (DataflowRunner's project, region,
temp_location; FlinkRunner's flink_master; ...); what each runner needs is
docs/scale.md. No TensorFlow or JAX here.
"""

import contextlib
import importlib
import io
import re

from apache_beam.options import pipeline_options as beam_options

# The runner Beam uses when the options name none.
DEFAULT_RUNNER = 'DirectRunner'
# Runners Beam knows only by their module path (runner=DaskRunner is taken
# for it; the `dask` extra of setup.py installs it).
QUALIFIED_RUNNERS = {
    'DaskRunner': 'apache_beam.runners.dask.dask_runner.DaskRunner'}


def pipeline_options(text: str) -> beam_options.PipelineOptions:
  """PipelineOptions of `--beam_pipeline_options`.

  Args:
    text: comma-separated key=value pairs, e.g. 'runner=DirectRunner,
      direct_num_workers=2,direct_running_mode=multi_processing'; a bare key
      is a boolean flag (save_main_session); a key given twice is given
      twice (experiments=a,experiments=b).

  Raises:
    ValueError: an empty or unknown key, or a value Beam rejects.
  """
  if 'DaskRunner' in text:
    # Its options (dask_client_address, ...) are known to Beam only once
    # its module is imported.
    importlib.import_module('apache_beam.runners.dask.dask_runner')
  flags = []
  for part in filter(None, (p.strip() for p in text.split(','))):
    key, has_value, value = part.partition('=')
    key = key.strip().lstrip('-')
    if not re.fullmatch(r'[A-Za-z_]\w*', key):
      raise ValueError(f'--beam_pipeline_options: {part!r} is not key=value '
                       '(e.g. runner=DirectRunner,direct_num_workers=2).')
    value = value.strip()
    if key == 'runner':
      value = QUALIFIED_RUNNERS.get(value, value)
    flags.append(f'--{key}={value}' if has_value else f'--{key}')
  options = beam_options.PipelineOptions(flags)
  # Beam parses lazily, exits on a bad value and drops unknown keys with a
  # mere warning: parse now, and say what is wrong in one line.
  with contextlib.redirect_stderr(io.StringIO()) as err:
    try:
      known = options.get_all_options()
      given = options.get_all_options(retain_unknown_options=True)
    except SystemExit:
      reason = (err.getvalue().strip().splitlines() or ['invalid'])[-1]
      raise ValueError(f'--beam_pipeline_options: {reason}') from None
  unknown = sorted(set(given) - set(known))
  if unknown:
    raise ValueError(f'--beam_pipeline_options: unknown option(s) {unknown} '
                     '(apache_beam.options.pipeline_options lists them).')
  return options


def runner_name(options: beam_options.PipelineOptions) -> str:
  """The runner the options choose, as given (DEFAULT_RUNNER when none)."""
  runner = options.view_as(beam_options.StandardOptions).runner
  if runner is None:
    return DEFAULT_RUNNER
  if not isinstance(runner, str):
    return type(runner).__name__
  return runner.rsplit('.', 1)[-1]
