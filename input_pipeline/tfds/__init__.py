"""TFDS builders of MuMu and MSD-I: importing this package registers them.

  import input_pipeline.tfds  # Registers 'mumu' and 'msdi'.
  ds = tfds.load('mumu/audio', split='train', data_dir=DATA_DIR,
                 download_and_prepare_kwargs={'download_config':
                     tfds.download.DownloadConfig(manual_dir=CORPUS)})

  mmgenre tfds mumu/audio --manual-dir CORPUS --data-dir DATA_DIR

(`tfds build mumu --imports input_pipeline.tfds --config audio --manual_dir
CORPUS --data_dir DATA_DIR` too, where TFDS's CLI has its mlcroissant.)

A build from a corpus prepares it in worker processes, which re-import the
main module: call tfds.load / download_and_prepare from a script file whose
top-level code is under `if __name__ == '__main__':`, not from a program read
from standard input (input_pipeline/prepare/workers.py: WorkerStartError).

One config per record kind (`audio`, `audio_windows`, `image`, `text`; MSD-I
has no `text`), each with the examples of the `mmgenre prepare` shards of the
same corpus and settings (prepared.py). The trainer reads them with
--config.data.source=tfds (input_pipeline/tfds/reader.py, docs/scale.md).
"""

# pylint: disable=unused-import
from input_pipeline.tfds import msdi
from input_pipeline.tfds import mumu
