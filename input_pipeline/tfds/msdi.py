"""The `msdi` TFDS builder: MSD-I tracks, single-label (paper Sec 6).

  mmgenre tfds msdi --manual-dir runs/data/synthetic --data-dir runs/tfds
"""

from input_pipeline import layout
from input_pipeline.tfds import prepared


class MSDI(prepared.PreparedBuilder):
  """MSD-I: track audio and album covers with one of 15 genres."""

  name = 'msdi'
  DATASET = 'msdi'
  RELEASE_FILE = layout.MSDI_TSV
  BUILDER_CONFIGS = list(prepared.configs_for('msdi'))
  DESCRIPTION = (
      'MSD-I (Oramas et al. 2018): 30K Million Song Dataset tracks with one '
      'of 15 genres and the cover of their album, as the records of `mmgenre '
      'prepare` (docs/data_formats.md §3): `audio` one CQT patch per track, '
      '`audio_windows` the whole-track windows, `image` the cover of each '
      'track. Splits: the release split (the `set` column).')
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
The manual dir is an MSD-I corpus directory, laid out as `mmgenre prepare
--dataset msdi --data DIR` reads it (docs/data_formats.md §1):

  DIR/{layout.MSDI_TSV}   the MSD-I release file (msd_track_id, genre,
                        album_index, set, image_url, ...)
  DIR/{layout.AUDIO_DIR}/<MSD_track_id>.<wav|flac|ogg|mp3>
  DIR/<image_url>       each row's cover: its image_url column, a path
                        relative to DIR (download remote URLs first)

Audio and covers are not redistributable: fetch them yourself; `mmgenre
synth --out DIR` writes a synthetic corpus in this layout. DIR may instead be
a complete `mmgenre prepare --dataset msdi --out DIR` directory
(manifest.json): its shards are then converted as they are.
"""
