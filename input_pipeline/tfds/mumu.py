"""The `mumu` TFDS builder: MuMu albums, multi-label (paper Sec 7).

  mmgenre tfds mumu --manual-dir runs/data/synthetic --data-dir runs/tfds
"""

from input_pipeline import layout
from input_pipeline.tfds import prepared


class MuMu(prepared.PreparedBuilder):
  """MuMu: album covers, reviews and track audio with multi-label genres."""

  name = 'mumu'
  DATASET = 'mumu'
  RELEASE_FILE = layout.MUMU_MULTI_LABEL_CSV
  SETTINGS = ('image_size', 'seed', 'min_albums')
  BUILDER_CONFIGS = list(prepared.configs_for('mumu'))
  DESCRIPTION = (
      'MuMu (Oramas et al. 2017, 2018): 31K Amazon albums with multi-label '
      'genres, their covers, reviews and Million Song Dataset track audio, '
      'as the records of `mmgenre prepare` (docs/data_formats.md §3): '
      '`audio` one CQT patch per track, `audio_windows` the whole-track '
      'windows, `image` one cover per album, `text` one tf-idf row per '
      'album (fitted on train). Splits: artist-filtered, computed with the '
      'config seed.')
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
The manual dir is a MuMu corpus directory, laid out as `mmgenre prepare
--dataset mumu --data DIR` reads it (docs/data_formats.md §1):

  DIR/{layout.MUMU_MULTI_LABEL_CSV}   the MuMu release file (or
                                     {layout.MUMU_SINGLE_LABEL_CSV})
  DIR/{layout.MUMU_LABELS_TSV}          its genre label list
  DIR/{layout.MUMU_TAXONOMY_TSV}           optional: the genre taxonomy
  DIR/{layout.REVIEWS_JSONL}                the Amazon reviews (one JSON object
                                     a line)
  DIR/{layout.AUDIO_DIR}/<MSD_track_id>.<wav|flac|ogg|mp3>
  DIR/{layout.COVERS_DIR}/<amazon_id>.<jpg|jpeg|png>

Audio and covers are not redistributable: fetch them yourself (the MSD
previews of the track ids, the Amazon covers of the albums); `mmgenre synth
--out DIR` writes a synthetic corpus in this layout. DIR may instead be a
complete `mmgenre prepare --dataset mumu --out DIR` directory (manifest.json):
its shards are then converted as they are.
"""
