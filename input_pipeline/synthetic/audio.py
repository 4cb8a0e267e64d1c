"""How a genre sounds: the synthesis of the corpus's audio tracks.

A track is rendered from a handful of genre attributes (tempo, drum pattern,
register, scale, timbre, note density), each following the track's label with
probability `signal`, plus the artist's signature (a motif, a key, a timbre)
and noise: SOUNDS gives every top-level genre its sound, and a sub-genre is a
fixed variation of its parent's.
"""

import dataclasses
from typing import Sequence

import numpy as np
import scipy.signal

from input_pipeline.synthetic import draws
from input_pipeline.synthetic import items
from input_pipeline.synthetic import taxonomy


@dataclasses.dataclass(frozen=True)
class Sound:
  """How a genre sounds.

  Attributes:
    bpm: tempo, beats per minute.
    drums: key of DRUM_PATTERNS.
    swing: delay of odd 16th notes, fraction of a 16th.
    register: MIDI note at the centre of the melody.
    scale: key of SCALES.
    brightness: harmonic k has amplitude k**-brightness (low = bright).
    odd: extra weight of odd harmonics (clarinet-like hollow sound).
    decay: note decay time constant, seconds.
    drive: tanh distortion gain (1 = clean).
    noise: level of the broadband noise floor.
    density: melody notes per beat.
  """
  bpm: float
  drums: str
  swing: float
  register: float
  scale: str
  brightness: float
  odd: float
  decay: float
  drive: float
  noise: float
  density: float


SOUNDS = {
    'Blues': Sound(84, 'shuffle', .33, 57, 'blues', 1.3, 0., .5, 1.8, .01, 1),
    'Country': Sound(112, 'two_step', 0, 64, 'major', 1.4, 0., .35, 1, .005,
                     2),
    'Electronic': Sound(128, 'four_floor', 0, 69, 'minor', .7, 0., .12, 1.2,
                        .02, 4),
    'Folk': Sound(96, 'sparse', 0, 62, 'major_penta', 1.9, 0., .9, 1, .003,
                  1),
    'Jazz': Sound(150, 'ride', .33, 65, 'dorian', 2.2, .6, .45, 1, .005, 2),
    'Latin': Sound(104, 'clave', 0, 67, 'phrygian', 1.5, 0., .25, 1, .01, 2),
    'Metal': Sound(176, 'blast', 0, 48, 'harmonic_minor', .5, 0., .2, 8,
                   .05, 4),
    'New Age': Sound(62, 'none', 0, 74, 'major_penta', 3.5, 0., 2.5, 1, 0.,
                     .5),
    'Pop': Sound(118, 'backbeat', 0, 69, 'major', 1.2, 0., .3, 1.3, .008, 2),
    'Punk': Sound(184, 'punk', 0, 60, 'mixolydian', .8, 0., .15, 5, .04, 2),
    'Rap': Sound(90, 'boom_bap', .1, 45, 'minor_penta', 1.7, 0., .2, 1.5,
                 .02, 1),
    'Reggae': Sound(74, 'one_drop', 0, 55, 'major', 1.6, 0., .3, 1, .01, 1),
    'RnB': Sound(96, 'rnb', .15, 62, 'minor', 1.6, .2, .4, 1.2, .008, 2),
    'Rock': Sound(126, 'backbeat', 0, 55, 'minor_penta', .9, 0., .3, 3, .03,
                  2),
    'World': Sound(108, 'odd', 0, 63, 'double_harmonic', 1.3, .3, .5, 1,
                   .01, 2),
}
# 16 steps (16th notes) of one 4/4 bar: kick, snare, hi-hat.
DRUM_PATTERNS = {
    'backbeat': ('x.......x.x.....', '....x.......x...', 'x.x.x.x.x.x.x.x.'),
    'four_floor': ('x...x...x...x...', '....x.......x...',
                   '..x...x...x...x.'),
    'blast': ('xxxxxxxxxxxxxxxx', 'x.x.x.x.x.x.x.x.', 'x.x.x.x.x.x.x.x.'),
    'punk': ('x.x.x.x.x.x.x.x.', '....x.......x...', 'xxxxxxxxxxxxxxxx'),
    'boom_bap': ('x......x..x.....', '....x.......x...', 'x.x.x.x.x.x.x.x.'),
    'one_drop': ('........x.......', '........x.......', '..x...x...x...x.'),
    'two_step': ('x.......x.......', '....x.......x...', 'x...x...x...x...'),
    'ride': ('x.......x.......', '......x.......x.', 'x...x.x.x...x.x.'),
    'shuffle': ('x.......x.......', '....x.......x...', 'x.xxx.xxx.xxx.xx'),
    'clave': ('x..x..x...x.x...', '......x.......x.', 'x.x.x.x.x.x.x.x.'),
    'rnb': ('x..x......x.....', '....x.......x...', 'x.xxx.x.x.xxx.x.'),
    'odd': ('x..x..x.........', '..........x..x..', 'x.x.x.x.x.x.x.x.'),
    'sparse': ('x...............', '................', '....x.......x...'),
    'none': ('................', '................', '................'),
}
SCALES = {
    'major': (0, 2, 4, 5, 7, 9, 11),
    'minor': (0, 2, 3, 5, 7, 8, 10),
    'major_penta': (0, 2, 4, 7, 9),
    'minor_penta': (0, 3, 5, 7, 10),
    'blues': (0, 3, 5, 6, 7, 10),
    'dorian': (0, 2, 3, 5, 7, 9, 10),
    'mixolydian': (0, 2, 4, 5, 7, 9, 10),
    'phrygian': (0, 1, 3, 5, 7, 8, 10),
    'harmonic_minor': (0, 2, 3, 5, 7, 8, 11),
    'double_harmonic': (0, 1, 4, 5, 7, 8, 11),
}
NUM_HARMONICS = 16
WAVETABLE_SIZE = 2048
# 2nd-order Butterworth at 0.75 of the Nyquist frequency, any sample rate.
_LOWPASS = scipy.signal.butter(2, 0.75, output='sos')


def sound_of(label: str) -> Sound:
  """The sound of a label: a sub-genre is a variation of its parent's."""
  base = SOUNDS[taxonomy.top_genre(label)]
  if label not in taxonomy.PARENT:
    return base
  r = draws.label_rng(label, 1).uniform(-1, 1, 5)
  return dataclasses.replace(
      base,
      bpm=base.bpm * (1 + 0.12 * r[0]),
      register=base.register + 4 * r[1],
      brightness=max(0.3, base.brightness * (1 + 0.2 * r[2])),
      decay=base.decay * (1 + 0.3 * r[3]),
      density=base.density * (1.5 if r[4] > 0.5 else 1.0))


def draw_audio_params(label: str, rng: np.random.Generator, signal: float,
                      labels: Sequence[str], artist: items.Artist,
                      artist_signal: float) -> dict:
  """Synthesis parameters of one track.

  Each attribute group (tempo, drums, register, scale, timbre, density)
  follows `label` with probability `signal`, else a uniformly drawn label, so
  with signal 0 the result does not depend on `label`.

  Args:
    label: the track's label.
    rng: the track's generator.
    signal: audio genre signal in [0, 1].
    labels: the labels decoys are drawn from.
    artist: the track's artist (its signature).
    artist_signal: strength of the signature in [0, 1].

  Returns:
    A dict of plain numbers, strings and lists: the input of synthesize().
  """
  group = {name: sound_of(draws.decoy(rng, label, signal, labels))
           for name in ('tempo', 'drums', 'register', 'scale', 'timbre',
                        'density')}
  timbre = group['timbre']
  k = np.arange(1, NUM_HARMONICS + 1)
  harmonics = k**-timbre.brightness * np.where(k % 2 == 1, 1 + timbre.odd,
                                               1 - 0.8 * timbre.odd)
  harmonics /= harmonics.sum()
  harmonics = ((1 - 0.5 * artist_signal) * harmonics +
               0.5 * artist_signal * np.array(artist.harmonics))
  tonic = (artist.key if rng.random() < artist_signal else
           int(rng.integers(12)))
  return {
      'bpm': float(group['tempo'].bpm * artist.tempo_factor**artist_signal *
                   rng.uniform(0.96, 1.04)),
      'swing': float(group['tempo'].swing),
      'drums': group['drums'].drums,
      'register': float(group['register'].register + rng.uniform(-2, 2)),
      'scale': group['scale'].scale,
      'tonic': tonic,
      'harmonics': [float(h) for h in harmonics],
      'decay': float(timbre.decay * rng.uniform(0.8, 1.25)),
      'drive': float(timbre.drive),
      'noise': float(timbre.noise),
      'density': float(group['density'].density),
      'signature': float(artist_signal),
      'motif': list(artist.motif),
      'motif_register': artist.motif_register,
      'signature_harmonics': list(artist.harmonics),
  }


def _wavetable(harmonics: Sequence[float]) -> np.ndarray:
  phase = np.arange(WAVETABLE_SIZE) / WAVETABLE_SIZE * 2 * np.pi
  k = np.arange(1, len(harmonics) + 1)
  return np.sin(np.outer(phase, k)) @ np.asarray(harmonics)


def _render_line(freqs: np.ndarray, lengths: np.ndarray, table: np.ndarray,
                 decay_s: float, sample_rate: int) -> np.ndarray:
  """A monophonic line: consecutive notes read from a wavetable.

  Args:
    freqs: [notes] Hz; 0 is a rest.
    lengths: [notes] samples per note (they follow each other).
    table: [WAVETABLE_SIZE] one period of the waveform.
    decay_s: exponential decay time constant of each note.
    sample_rate: Hz.

  Returns:
    float64 [sum(lengths)].
  """
  f = np.repeat(freqs, lengths)
  phase = np.cumsum(f / sample_rate)
  wave = table[(phase * WAVETABLE_SIZE).astype(np.int64) % WAVETABLE_SIZE]
  starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
  t = (np.arange(len(f)) - starts) / sample_rate
  # A 5 ms attack avoids clicks; the decay shapes the timbre (pluck vs pad).
  envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / decay_s)
  return wave * envelope * (f > 0)


def _midi_to_hz(midi):
  return 440.0 * 2.0**((np.asarray(midi, np.float64) - 69) / 12)


def _degree_to_midi(degrees, root: float, scale: Sequence[int]):
  degrees = np.asarray(degrees)
  scale = np.asarray(scale)
  return root + 12 * (degrees // len(scale)) + scale[degrees % len(scale)]


def _drum_hits(sample_rate: int, rng: np.random.Generator):
  """One-shot kick, snare and hi-hat samples, float64 [n_i] each."""
  t = np.arange(int(0.15 * sample_rate)) / sample_rate
  kick = np.sin(2 * np.pi * np.cumsum(50 + 100 * np.exp(-t * 30)) /
                sample_rate) * np.exp(-t * 25)
  snare = (rng.standard_normal(len(t)) * np.exp(-t * 30) +
           0.5 * np.sin(2 * np.pi * 180 * t) * np.exp(-t * 20))
  t_hat = t[:int(0.05 * sample_rate)]
  hat = np.diff(rng.standard_normal(len(t_hat) + 1)) * np.exp(-t_hat * 80)
  return kick, 0.6 * snare, 0.25 * hat


def synthesize(params: dict, *, sample_rate: int, duration: float,
               channels: int, rng: np.random.Generator) -> np.ndarray:
  """Renders a track: melody, bass, drums, artist signature and noise.

  Args:
    params: from draw_audio_params.
    sample_rate: Hz.
    duration: seconds.
    channels: 1 or 2.
    rng: the track's generator.

  Returns:
    float32 [n] (mono) or [n, 2] (stereo), n = round(duration * sample_rate),
    peak in [0.4, 0.7].
  """
  n = int(round(duration * sample_rate))
  step = 60.0 / params['bpm'] / 4  # a 16th note, seconds
  n_steps = int(np.ceil(duration / step)) + 2
  k = np.arange(n_steps + 1)
  # Swing delays every odd 16th note.
  step_samples = np.round(
      (k + (k % 2) * params['swing'] * 0.66) * step * sample_rate).astype(
          np.int64)
  scale = SCALES[params['scale']]
  root = params['tonic'] + 12 * round((params['register'] - params['tonic'])
                                      / 12)

  def line(note_steps, midis, table, decay):
    bounds = np.append(np.cumsum(note_steps) - note_steps, sum(note_steps))
    bounds = np.minimum(bounds, n_steps)
    lengths = np.diff(step_samples[bounds])
    out = _render_line(np.where(np.isnan(midis), 0, _midi_to_hz(
        np.nan_to_num(midis))), lengths, table, decay, sample_rate)
    return np.pad(out, (0, max(0, n - len(out))))[:n]

  # Melody: a random walk on the scale, note lengths around 1/density beats.
  base = max(1, int(round(4 / params['density'])))
  lengths, degrees, degree = [], [], 0
  while sum(lengths) < n_steps:
    lengths.append(int(base * rng.choice((0.5, 1, 1, 2))) or 1)
    degree = int(np.clip(degree + rng.integers(-2, 3), -len(scale),
                         2 * len(scale)))
    degrees.append(np.nan if rng.random() < 0.1 else degree)
  midis = np.array([np.nan if np.isnan(d) else
                    _degree_to_midi(int(d), root, scale) for d in degrees])
  melody = line(lengths, midis, _wavetable(params['harmonics']),
                params['decay'])
  # Bass: a chord root every half bar, two octaves down.
  n_bass = n_steps // 8 + 1
  bass_midis = _degree_to_midi(rng.choice((0, 3, 4, 5), n_bass), root - 24,
                               scale)
  bass = line([8] * n_bass, np.maximum(bass_midis, 28.0),
              _wavetable(np.arange(1, 5.0)**-2.5), 0.8 * step * 8)
  # Artist signature: its 4-note motif at the start of every bar.
  motif_root = params['tonic'] + 12 * round(
      (params['motif_register'] - params['tonic']) / 12)
  n_bars = n_steps // 16 + 1
  motif = _degree_to_midi(np.array(params['motif']), motif_root, scale)
  sig_midis = np.tile(np.append(motif, np.nan), n_bars)
  sig_lengths = np.tile([2, 2, 2, 2, 8], n_bars)
  signature = line(list(sig_lengths), sig_midis,
                   _wavetable(params['signature_harmonics']), 0.3)
  # Drums, added hit by hit (a few hundred slices per track).
  drums = np.zeros(n + int(0.2 * sample_rate))
  for hit, pattern in zip(_drum_hits(sample_rate, rng),
                          DRUM_PATTERNS[params['drums']]):
    for s in range(n_steps):
      if pattern[s % 16] == 'x' and step_samples[s] < n:
        start = step_samples[s]
        drums[start:start + len(hit)] += hit * rng.uniform(0.7, 1.0)
  drums = drums[:n]
  mix = (0.45 * melody + 0.35 * bass + 0.5 * drums +
         0.6 * params['signature'] * signature +
         params['noise'] * rng.standard_normal(n))
  if params['drive'] > 1:
    mix = np.tanh(params['drive'] * mix) / np.tanh(params['drive'])
  if channels == 2:
    # Melody panned one way, the signature the other.
    pan = 0.15 * (melody - params['signature'] * signature)
    mix = np.stack([mix + pan, mix - pan], axis=1)
  # A gentle low-pass tames the aliasing of wavetables and distortion, which
  # low-bitrate codecs turn into large overshoots.
  mix = scipy.signal.sosfilt(_LOWPASS, mix, axis=0)
  mix /= np.max(np.abs(mix)) + 1e-9
  # Peaks of 0.4-0.7 leave room for the overshoot of low-bitrate codecs.
  return (mix * rng.uniform(0.4, 0.7)).astype(np.float32)
