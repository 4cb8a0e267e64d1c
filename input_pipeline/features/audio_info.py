"""What decoding an audio file observed: length, rate, channels, levels.

The readers (features.audio.decode, audio_patch_and_windows(return_info=True),
input_pipeline.features.streaming) fill a `SampleStats` with the samples they
decode anyway and return its `AudioInfo`; observing never changes the features.
Tagging words these facts as warnings (mmgenre_jax/tagging/inputs.py,
docs/tagging.md); prepare may use them to report dubious tracks.

  y, info = audio.decode('song.mp3')
  info.duration_s, info.source_sr, info.channels, info.silent
"""

import dataclasses
import math
from typing import Optional

import numpy as np

# A sample is at full scale from CLIP_LEVEL up: 16-bit PCM's largest value
# is 32767 / 32768 = 0.99997, and decoders of clipped lossy files overshoot
# past 1.0.
CLIP_LEVEL = 0.999
# A peak below this is silence to a listener, but the log-CQT, in dB relative
# to the track's own maximum, would still stretch it (dither, hiss) over the
# full 80 dB range, as loud as music.
SILENCE_DBFS = -60.0


@dataclasses.dataclass(frozen=True)
class AudioInfo:
  """What decoding one file observed.

  Attributes:
    duration_s: length of the decoded audio, seconds.
    source_sr: the file's sample rate, Hz.
    channels: the file's channel count (mixed to mono by their mean).
    clipped_fraction: fraction of the observed samples (all channels) at
      full scale, |x| >= CLIP_LEVEL, in [0, 1].
    nonfinite: NaN or infinite samples observed (all channels).
    silent: the observed peak is below SILENCE_DBFS.
    peak_dbfs: the largest finite |x| observed, dB full scale (-inf for
      digital silence).
    observed_s: seconds of audio the four facts above are over: the whole
      file, or the part a reader decoded (the streaming reader: the span of
      the prediction windows, what the network hears).
    header_duration_s: the length the file's header promised, None when it
      gives none (a truncated file promises more than decodes).
  """
  duration_s: float
  source_sr: int
  channels: int
  clipped_fraction: float
  nonfinite: int
  silent: bool
  peak_dbfs: float
  observed_s: float
  header_duration_s: Optional[float] = None


class SampleStats:
  """AudioInfo's facts accumulated over blocks of decoded samples.

  Blocks may overlap (the streaming reader reads context around each
  block): `add` counts each sample once, from where the block starts in the
  file, so blocks must come in file order.
  """

  def __init__(self):
    self.frames = 0  # Frames counted (one per sample instant).
    self.values = 0  # Samples counted, all channels.
    self.clipped = 0
    self.nonfinite = 0
    self.peak = 0.0
    self._end = 0  # The first frame not yet counted.

  def add(self, data: np.ndarray, start: int) -> np.ndarray:
    """Counts data [n, channels] read from frame `start`.

    Returns:
      data, with NaN and infinite samples set to 0 (a copy only then).
    """
    finite = np.isfinite(data)
    new = slice(max(0, self._end - start), None)
    self._end = max(self._end, start + data.shape[0])
    if not finite.all():
      self.nonfinite += int(np.count_nonzero(~finite[new]))
      data = np.where(finite, data, np.float32(0.0))
    magnitude = np.abs(data[new])
    if magnitude.size:
      self.frames += magnitude.shape[0]
      self.values += magnitude.size
      self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
      self.peak = max(self.peak, float(magnitude.max()))
    return data

  def info(self, *, duration_s: float, source_sr: int, channels: int,
           header_duration_s: Optional[float]) -> AudioInfo:
    """The AudioInfo of what was added, for a file of these properties."""
    peak_dbfs = 20 * math.log10(self.peak) if self.peak > 0 else -math.inf
    return AudioInfo(
        duration_s=float(duration_s), source_sr=int(source_sr),
        channels=int(channels),
        clipped_fraction=self.clipped / max(1, self.values),
        nonfinite=self.nonfinite, silent=peak_dbfs < SILENCE_DBFS,
        peak_dbfs=peak_dbfs, observed_s=self.frames / source_sr,
        header_duration_s=header_duration_s)
