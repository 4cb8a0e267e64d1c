"""TensorBoard summaries of a workdir that may be a URL (gs://...).

clu's default writer writes event files through TensorFlow's filesystem,
whose GCS client always calls www.googleapis.com (docs/scale.md §4): it
cannot reach a GCS emulator or a private endpoint, and it is a second
client beside gcsfs. For a URL workdir the events are written to a local
temporary folder, and every flush uploads its files to the same names
under the workdir through input_pipeline.fileio (one object write each:
a reader sees the previous upload or the new one). Event files hold
scalars and a few images, KBs to a few MB, so uploading them whole at
each flush (every `log_every_steps` and at the end) costs little.

  writer = summaries.create_writer(workdir, just_logging=not is_chief)
"""

import os
import shutil
import tempfile

from clu import metric_writers

from input_pipeline import fileio


class _UploadingWriter(metric_writers.MultiWriter):
  """clu's default writer on a local folder, uploaded at each flush."""

  def __init__(self, url: str):
    self._url = url.rstrip('/')
    self._local = tempfile.mkdtemp(prefix='.summaries-')
    super().__init__([metric_writers.create_default_writer(self._local)])

  def _upload(self) -> None:
    for path in fileio.files_under(self._local):
      name = os.path.relpath(path, self._local)
      with open(path, 'rb') as f:
        fileio.write_atomic(f'{self._url}/{name}', f.read())

  def flush(self) -> None:
    super().flush()
    self._upload()

  def close(self) -> None:
    super().close()
    self._upload()
    shutil.rmtree(self._local, ignore_errors=True)


def create_writer(logdir, just_logging: bool = False
                  ) -> metric_writers.MetricWriter:
  """metric_writers.create_default_writer(logdir), for a URL too."""
  if just_logging or fileio.is_local(logdir):
    return metric_writers.create_default_writer(
        os.fspath(logdir), just_logging=just_logging)
  return _UploadingWriter(os.fspath(logdir))
