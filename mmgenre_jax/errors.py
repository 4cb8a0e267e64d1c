"""Errors a user can fix: their message is the one line main.py prints.

One family with the input pipeline's (input_pipeline/errors.py, where its
root `UserError` lives): main.py and every `mmgenre` command print a
UserError as `error: <message>` and exit with EXIT_CODE, without a
traceback; any other exception is a bug and keeps its traceback. Each class
also derives from the builtin error its callers caught before it existed
(ValueError, FileNotFoundError, RuntimeError), so library code and tests
that catch those still do.

  raise errors.ConfigError('config.data.shard_dir is empty; set ...')

No JAX or TensorFlow here: configs, the report and main.py import it cheaply.
"""

from input_pipeline import errors as input_errors

# The root of the family and the exit status of a user's mistake
# (input_pipeline/errors.py).
UserError = input_errors.UserError
EXIT_CODE = input_errors.EXIT_CODE
# Too many inputs of a job failed for its output to be written (the
# `mmgenre` commands' EXIT_ALL_FAILED, cli/flags.py).
InputsFailedError = input_errors.InputsFailedError


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


class ExamplesFailedError(InputsFailedError, ValueError):
  """Too many of finetune's examples failed to embed to fit the head."""


class TaggingError(UserError, ValueError):
  """A model or an input cannot be used for tagging; the message says why
  and what to do."""


def one_line(error: BaseException) -> str:
  """`error: <message>` on one line (newlines of the message joined)."""
  message = ' '.join(str(error).split('\n')).strip()
  return f'error: {message or type(error).__name__}'
