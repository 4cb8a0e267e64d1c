"""What the pipeline configs (mumu_cosine, mumu_logistic, msdi) share.

Not an experiment: helpers and the default shard locations, which are where
`./run.sh` prepares the embedded corpus (override with
--config.data.shard_dir=...).
"""

import itertools
from typing import Optional, Sequence

import ml_collections

from mmgenre_jax.pipelines import definition

# Written by ./run.sh: MuMu shards with the semantic enrichment of the
# reviews (prepare --enrichment, so the text stage is VSM+SEM), MSD-I shards.
MUMU_SHARD_DIR = 'runs/data/mumu_shards'
MSDI_SHARD_DIR = 'runs/data/msdi_shards'
# Where docs/data_formats.md §1.3 prepares a catalog (`mmgenre prepare
# --dataset catalog --manifest FILE --out runs/data/catalog_shards`).
CATALOG_SHARD_DIR = 'runs/data/catalog_shards'
# The MuMu modalities fused, in fusion order.
MUMU_MODALITIES = ('audio', 'text', 'image')
# The MuMu pipelines' AUDIO row (Sec 7.3.1): the Sec 4 network on the
# album-averaged track vectors of the audio CNN.
ALBUM_AUDIO_STAGE = 'audio_album'


def parse_variant(arg: Optional[str], config_file: str) -> str:
  """'' (the paper's scale) or 'cpu'."""
  variant = (arg or '').lower()
  if variant not in ('', 'cpu'):
    raise ValueError(
        f'Bad {config_file} argument {arg!r}: use no argument (the paper\'s '
        f'scale) or cpu ({config_file}:cpu, the CPU-sized run of ./run.sh).')
  return variant


def config_ref(config_file: str, variant: str) -> str:
  return config_file + (f':{variant}' if variant else '')


def mumu_fusion_subsets(all_subsets: bool) -> Sequence[Sequence[str]]:
  """Modality subsets fused: A+T+I, and with all_subsets A+T, A+I, T+I."""
  if not all_subsets:
    return (MUMU_MODALITIES,)
  return tuple(itertools.combinations(MUMU_MODALITIES, 2)) + (
      MUMU_MODALITIES,)


# The CPU variant of the MuMu pipelines (./run.sh, 2 cores): epoch limits per
# stage (early stopping still applies) and the smaller networks.
MUMU_CPU_EPOCHS = {'audio': 6, 'text': 20, 'image': 20, 'fusion': 60}
# Fusion learning rate of the CPU variants. The fusion layer reads
# L2-normalised inputs, so its logits start tiny and LOGISTIC needs many
# updates to grow them: the paper had ~790 steps an epoch (25,175 albums),
# the embedded corpus ~15, so the rate is raised instead (early stopping on
# the validation loss still picks the epoch).
CPU_FUSION_LEARNING_RATE = 1e-2
MUMU_CPU_OVERRIDES = {
    'audio': {'train.num_epochs': MUMU_CPU_EPOCHS['audio']},
    'text': {'train.num_epochs': MUMU_CPU_EPOCHS['text'],
             'model.hidden_units': (256, 256)},
    # The paper's recipe (90 epochs at lr 1e-4) fine-tunes ImageNet weights;
    # the tiny ResNet starts from scratch (explicitly), so a faster one:
    # Adam at 3e-3, x0.3 every 7 epochs, weight decay 1e-3 on all weights
    # (still Sec 3.2's all-parameter decay), at most 20 epochs with early
    # stopping after 4. The random-resized crops and flips stay; the
    # photometric distortions go: a synthetic cover's genre is mostly its
    # palette (input_pipeline/synthetic/covers.py LOOKS), which they blur
    # (BENCHMARKS.md §6).
    'image': {'model.from_scratch': True,
              'train.num_epochs': MUMU_CPU_EPOCHS['image'],
              'train.patience': 4,
              'train.optimizer': 'adam', 'train.learning_rate': 3e-3,
              'train.lr_decay_epochs': 7, 'train.lr_decay_factor': 0.3,
              'train.weight_decay': 1e-3, 'train.batch_size': 32,
              'data.image_augment.brightness': 0.0,
              'data.image_augment.contrast': 0.0,
              'data.image_augment.saturation': 0.0,
              'data.image_augment.lighting': 0.0},
    'fusion': {'train.num_epochs': MUMU_CPU_EPOCHS['fusion'],
               'train.learning_rate': CPU_FUSION_LEARNING_RATE},
}
# d of the COSINE label factors in the CPU variants: the embedded corpus has
# 45 labels, fewer than the paper's d = 50 (for 250 labels, Sec 7.3), and
# SVD gives at most one factor per label.
CPU_FACTOR_DIM = 16
# The audio network of the CPU variants: LOW-4x96 (Table 6: AUC 0.860
# COSINE, 0.851 LOGISTIC) convolves time only, ~20x fewer multiply-adds than
# 4x70 (whose 4x70 first layer dominates), so that both MuMu pipelines train
# in minutes on 2 cores.
CPU_AUDIO_SETTINGS = 'low-4x96'
# The image network of the CPU variants (the paper: ResNet-101): the
# 2-stage 'tiny' ResNet (32/64 channels, 64-d features). A ResNet-18 step is
# two orders of magnitude slower on 2 CPU cores, too slow for the main job;
# narrower tiny ResNets stay near a colour-histogram baseline
# (BENCHMARKS.md §6).
CPU_IMAGE_DEPTH = 'tiny'


def fusion_stage(subset: Sequence[str], fusion_target: str,
                 target: str) -> str:
  """The stage name of a MuMu fusion: 'audio_text', or with a target other
  than the pipeline's, 'audio_text_logistic'."""
  return '_'.join(subset) + ('' if fusion_target == target
                             else f'_{fusion_target}')


def mumu_pipeline(name: str, variant: str, *, audio_arg: str,
                  target: str, fusion_targets: Sequence[str],
                  dataset: str = 'mumu',
                  shard_dir: str = MUMU_SHARD_DIR
                  ) -> ml_collections.ConfigDict:
  """audio and text networks, the album-level AUDIO network, the image
  network and the fusions of their vectors.

  Args:
    name: the pipeline (configs/<name>.py).
    variant: '' (paper scale) or 'cpu' (MUMU_CPU_OVERRIDES).
    audio_arg: the configs/mumu_audio.py argument of the audio stage.
    target: 'cosine' or 'logistic': of the audio, text and audio_album
      stages; the image network is LOGISTIC in every pipeline (Table 6 has
      only IMAGE LOGISTIC).
    fusion_targets: the output configurations of the fusions, each over
      the same audio, text and image vectors (Sec 7.4: "Both output
      configurations LOGISTIC and COSINE are used in the learning phase"
      on the vectors of one set of networks). The fusions of `target` are
      named after their modalities ('audio_text_image'), the others
      get the target as a suffix ('audio_text_image_logistic'). Empty: no
      fusions and no image network (the LOGISTIC single-modality rows).
    dataset: 'mumu', or 'catalog' (the same stages on a catalog's shards,
      which are laid out as MuMu's; every stage's data.dataset says so, for
      the report).
    shard_dir: the shards every network stage reads.
  """
  cpu = variant == 'cpu'
  config = definition.pipeline_config(
      name, config_ref(f'configs/{name}.py', variant), dataset=dataset,
      shard_dir=shard_dir)
  networks = {
      'audio': ('configs/mumu_audio.py', audio_arg, target),
      'text': ('configs/mumu_text.py', target, target),
      'image': ('configs/mumu_image.py',
                f'logistic-{CPU_IMAGE_DEPTH}' if cpu else 'logistic',
                'logistic'),
  }

  def overrides(kind, stage_target):
    values = dict(MUMU_CPU_OVERRIDES[kind]) if cpu else {}
    if cpu and stage_target == 'cosine':
      values['data.factor_dim'] = CPU_FACTOR_DIM
    if dataset != 'mumu':
      values['data.dataset'] = dataset
    return values or None

  modalities = MUMU_MODALITIES if fusion_targets else ('audio', 'text')
  for modality in modalities:
    config_file, arg, stage_target = networks[modality]
    definition.add_stage(
        config, modality, config_file=config_file, config_arg=arg,
        overrides=overrides(modality, stage_target),
        # The track CNN's album mean of scores is a diagnostic; the AUDIO
        # row is the audio_album stage below.
        row=definition.own_head_row('audio') if modality == 'audio' else None)
  # Sec 7.3.1: the AUDIO row is the Sec 4 network trained on the album
  # averages of the track CNN's vectors (the audio stage extracts them per
  # album), labelled with the CNN's settings as in Table 6, whose Params
  # and Time columns are the CNN's (the row's `features_stage`).
  audio_settings = definition.describe_stage(
      config.stages.audio.config)['settings']
  definition.add_stage(
      config, ALBUM_AUDIO_STAGE, config_file='configs/mumu_fusion.py',
      config_arg=f'audio-{target}', overrides=overrides('fusion', target),
      inputs={'audio': 'audio'},
      row={'settings': audio_settings, 'features_stage': 'audio'})
  for fusion_target in fusion_targets:
    for subset in mumu_fusion_subsets(all_subsets=True):
      definition.add_stage(
          config, fusion_stage(subset, fusion_target, target),
          config_file='configs/mumu_fusion.py',
          config_arg='+'.join(subset) + f'-{fusion_target}',
          overrides=overrides('fusion', fusion_target),
          inputs={m: m for m in subset})
  config.final = (fusion_stage(MUMU_MODALITIES, fusion_targets[0], target)
                  if fusion_targets else ALBUM_AUDIO_STAGE)
  definition.link_input_dims(config)
  return config
