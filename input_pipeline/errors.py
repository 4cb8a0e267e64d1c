"""The one family of errors a user can fix, rooted on the input side.

`UserError` is a mistake in the command line or in the files it names; its
message says what is wrong and what to do, in one line. main.py and every
`mmgenre` command print it as that line and exit with EXIT_CODE, without a
traceback; any other exception is a bug and keeps its traceback.

The root lives here, in the lowest layer, so that the input pipeline's
errors (`InputError` and its kinds: an unusable manifest, release file,
feature or shard, a corpus that cannot be prepared) belong to the same
family as the library's (mmgenre_jax/errors.py) without input_pipeline
importing mmgenre_jax. Each class also derives from the builtin error its
callers caught before (ValueError, RuntimeError, ...), so code that catches
those still does.
"""

# The exit status of a user's mistake, for main.py and every `mmgenre`
# command (argparse's own usage errors exit 2 too); 1 is a bug's (an
# uncaught exception with its traceback).
EXIT_CODE = 2


class UserError(Exception):
  """A mistake in the command line or in the files it names."""


class InputError(UserError):
  """A file given to the input pipeline cannot be used as it is."""


class InputsFailedError(UserError):
  """Too many of a job's inputs failed for it to write its output.

  Each input was tried and is reported (skipped.tsv, the rows' `error`);
  what stopped the job is how many failed, not the command. The `mmgenre`
  commands exit with their `inputs failed` status on it, not EXIT_CODE
  (mmgenre_jax/cli/flags.py).
  """
