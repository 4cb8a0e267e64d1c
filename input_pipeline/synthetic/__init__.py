"""The embedded synthetic corpus: real files in the MuMu / MSD-I formats.

Audio and covers of MuMu and MSD-I are not redistributable (paper Sec 9), so
every stage of the project runs by default on a corpus written here. It
follows the layout of docs/data_formats.md §1 and carries the structure the
paper's methods rely on:

  * a two-level genre taxonomy (the 15 MSD-I genres, each with 1-3
    sub-genres) and album multi-labels expanded to every branch, so label
    co-occurrence has real structure for the PPMI factorisation (Sec. 5.1);
  * artists with a consistent genre profile and a fingerprint of their own in
    every modality, several albums each, so that letting an artist into two
    splits would inflate scores (the reason for artist-filtered splits);
  * audio (wav/flac/ogg/mp3, 22.05/44.1/48 kHz, mono/stereo, 10-40 s) whose
    tempo, drum pattern, register, scale and timbre follow the genre; covers
    (jpg/png, 200-600 px, RGB/L/P/RGBA/CMYK) whose palette, shapes and
    texture follow the genre; Amazon-style reviews whose vocabulary follows
    the genre, with entities listed in enrichment.tsv.

How much genre a modality carries is set by its signal in [0, 1]: each genre
attribute of an item (a track's tempo, a cover's palette, a review's genre
word) comes from the item's own label with probability `signal` and from a
uniformly drawn label otherwise, so a signal of 0 makes the modality
independent of the genre. The defaults give text > audio > image, as in the
paper (Table 6).

Everything is drawn from numpy Generators seeded by (seed, stream, index), so
the corpus does not depend on the number of worker processes: the same seed
gives byte-identical metadata files, covers and wav/flac/mp3 audio. (Ogg
files decode to the same samples, but libsndfile puts a random stream serial
number in the container.)

Modules, in the order a corpus is made:

  taxonomy  the genres, labels and two-level taxonomy.
  draws     the per-item random generators every draw comes from.
  items     Artist, Album, Track and where their files lie.
  plan      the corpus plan: artists, albums, MSD-I sets, defects.
  audio     how a genre sounds: synthesis of the tracks.
  covers    how a genre looks: painting of the covers.
  reviews   what reviewers write: the Amazon-style reviews.
  write     generate_corpus (files, metadata, corpus_summary.json) and
            is_complete.

  mmgenre synth --out runs/data/synthetic --albums 500 --seed 0

  synthetic.generate_corpus(out, num_albums=500, seed=0)
  synthetic.is_complete(out, num_albums=500, seed=0)  # True: nothing to do
"""

# The public names; the rest stays in the modules.
# pylint: disable=unused-import
from input_pipeline.synthetic.audio import draw_audio_params
from input_pipeline.synthetic.audio import synthesize
from input_pipeline.synthetic.covers import draw_image_params
from input_pipeline.synthetic.covers import render_cover
from input_pipeline.synthetic.items import Album
from input_pipeline.synthetic.items import Artist
from input_pipeline.synthetic.items import audio_path
from input_pipeline.synthetic.items import cover_path
from input_pipeline.synthetic.items import Track
from input_pipeline.synthetic.plan import assign_sets
from input_pipeline.synthetic.plan import choose_defects
from input_pipeline.synthetic.plan import COVER_MODES
from input_pipeline.synthetic.plan import DEFECT_KINDS
from input_pipeline.synthetic.plan import MSDI_SET_FRACTIONS
from input_pipeline.synthetic.plan import plan_corpus
from input_pipeline.synthetic.reviews import GENRE_WORDS
from input_pipeline.synthetic.reviews import make_reviews
from input_pipeline.synthetic.reviews import REVIEWS_PER_ALBUM
from input_pipeline.synthetic.taxonomy import expand_to_parents
from input_pipeline.synthetic.taxonomy import GENRES
from input_pipeline.synthetic.taxonomy import labels_of
from input_pipeline.synthetic.taxonomy import PARENT
from input_pipeline.synthetic.taxonomy import TAXONOMY
from input_pipeline.synthetic.taxonomy import top_genre
from input_pipeline.synthetic.write import DEFAULT_ARTIST_SIGNAL
from input_pipeline.synthetic.write import DEFAULT_AUDIO_SIGNAL
from input_pipeline.synthetic.write import DEFAULT_IMAGE_SIGNAL
from input_pipeline.synthetic.write import DEFAULT_TEXT_SIGNAL
from input_pipeline.synthetic.write import GENERATOR_VERSION
from input_pipeline.synthetic.write import generate_corpus
from input_pipeline.synthetic.write import is_complete
from input_pipeline.synthetic.write import METADATA_FILES
