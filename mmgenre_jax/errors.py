"""Errors a user can fix: their message is the one line main.py prints.

main.py catches this family (and input_pipeline.records.shard_reader.ManifestError, whose
messages name `mmgenre prepare`), prints `error: <message>` and exits with
EXIT_CODE, without a traceback; any other exception is a bug and keeps its
traceback. Each class also derives from the builtin error callers caught
before it existed (ValueError, FileNotFoundError, RuntimeError), so library
code and tests that catch those still do.

  raise errors.ConfigError('config.data.shard_dir is empty; set ...')

No JAX or TensorFlow here: configs, the report and main.py import it cheaply.
"""

# main.py's exit status on a user error (1 stays an uncaught exception, a bug).
EXIT_CODE = 2


class UserError(Exception):
  """A mistake in the command line or in the files it names.

  The message says what is wrong and what to do, in one line.
  """


class ConfigError(UserError, ValueError):
  """The config does not fit the data (shard_dir unset, sizes, targets)."""


class WorkdirError(UserError, ValueError):
  """The workdir belongs to another config (or is of another kind)."""


class WorkdirLockedError(UserError, RuntimeError):
  """Another live process trains in this workdir."""


class NoCheckpointError(UserError, FileNotFoundError):
  """Evaluation or extraction asked for a checkpoint the workdir lacks."""


class UnknownStageError(UserError, ValueError):
  """--stage names no stage of the pipeline config."""


class DivergedError(UserError, RuntimeError):
  """A loss or the parameters became NaN / Inf: training stopped."""


def one_line(error: BaseException) -> str:
  """`error: <message>` on one line (newlines of the message joined)."""
  message = ' '.join(str(error).split('\n')).strip()
  return f'error: {message or type(error).__name__}'
