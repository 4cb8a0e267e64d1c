"""Feature functions that break a `prepare` worker process, for the pool's
tests: each is module-level, so a real worker unpickles and runs it."""

import os
import signal

from input_pipeline.prepare import workers as prepare_workers

# An audio file that starts with this kills the worker reading it, as a
# decoder's segfault on a corrupt file would.
CRASH = b'CRASH-THE-WORKER'


def audio_features_or_crash(path, **kwargs):
  """prepare_workers.audio_features, but a CRASH file kills the process."""
  with open(path, 'rb') as f:
    if f.read(len(CRASH)) == CRASH:
      os.kill(os.getpid(), signal.SIGKILL)
  return prepare_workers.audio_features(path, **kwargs)
