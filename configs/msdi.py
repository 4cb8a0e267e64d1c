"""The MSD-I pipeline of Table 2: CNN_AUDIO, CNN_VISUAL, alignment, fusions.

  python main.py --config=configs/msdi.py --workdir=runs/msdi
  python main.py --config=configs/msdi.py:cpu --workdir=runs/msdi

For each seed s in SEEDS (Sec 6.3: "every experiment was run 3 times"):
audio_s<s> (CNN_AUDIO), image_s<s> (CNN_VISUAL, ResNet-101), align_s<s> (the
alignment space on their representations: MM_AUDIO, MM_VISUAL), then one
softmax fusion stage per row of Table 2 (msdi_fusion.TABLE2_ROWS, named after
its modalities, e.g. audio_mm_audio_s0; the one-input rows CNN_AUDIO and
CNN_VISUAL are audio_mlp_s0 and image_mlp_s0: every row of Table 2 goes
through the Sec 4 network, Sec 6.2). The CNNs' own softmax heads are reported
apart, as modality audio_head / image_head. The report gives mean ± sd over
the seeds.

'cpu' (./run.sh): the tiny ResNet from scratch with Adam on the covers (as
in the MuMu pipelines), few epochs (CPU_EPOCHS), and only the fusions the
paper's findings need (CPU_FUSIONS).
"""

from typing import Optional

import ml_collections

from configs import msdi_fusion
from configs import pipeline_common
from mmgenre_jax.pipelines import definition

NAME = 'msdi'
# Sec 6.3: 3 runs per experiment.
SEEDS = (0, 1, 2)
CPU_EPOCHS = {'audio': 6, 'alignment': 20, 'fusion': 60}
CPU_OVERRIDES = {
    'audio': {'train.num_epochs': CPU_EPOCHS['audio']},
    'image': pipeline_common.MUMU_CPU_OVERRIDES['image'],
    'alignment': {'train.num_epochs': CPU_EPOCHS['alignment']},
    'fusion': {'train.num_epochs': CPU_EPOCHS['fusion'],
               'train.learning_rate':
                   pipeline_common.CPU_FUSION_LEARNING_RATE},
}
# Table 2 rows the CPU run trains: the findings compare audio+mm_audio with
# audio (CNN_AUDIO), and ALL with each single modality.
CPU_FUSIONS = ('audio', 'image', 'audio+mm_audio', 'audio+image',
               'audio+image+mm_audio+mm_visual')


def fusion_stage_name(modalities, seed: int) -> str:
  """'audio_mm_audio_s0'; a one-input row 'audio_mlp_s0' (the CNN stages
  are audio_s<s> and image_s<s>)."""
  suffix = '_mlp' if len(modalities) == 1 else ''
  return '_'.join(modalities) + f'{suffix}_s{seed}'


def get_config(arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """The pipeline; arg '' (paper scale) or 'cpu'."""
  variant = pipeline_common.parse_variant(arg, f'configs/{NAME}.py')
  cpu = variant == 'cpu'
  config = definition.pipeline_config(
      NAME, pipeline_common.config_ref(f'configs/{NAME}.py', variant),
      dataset='msdi', shard_dir=pipeline_common.MSDI_SHARD_DIR)
  fusions = CPU_FUSIONS if cpu else msdi_fusion.TABLE2_ROWS

  def overrides(kind, seed):
    values = {'train.seed': seed}
    if cpu:
      values.update(CPU_OVERRIDES[kind])
    return values

  for seed in SEEDS:
    audio, image, align = f'audio_s{seed}', f'image_s{seed}', f'align_s{seed}'
    # The CNNs' own softmax heads are diagnostics: Table 2's CNN_AUDIO and
    # CNN_VISUAL rows are the Sec 4 network on their vectors (the one-input
    # fusions audio_mlp_s<s> and image_mlp_s<s>).
    definition.add_stage(config, audio, config_file='configs/msdi_audio.py',
                         overrides=overrides('audio', seed),
                         row=definition.own_head_row('audio'))
    definition.add_stage(
        config, image, config_file='configs/msdi_visual.py',
        config_arg=(str(pipeline_common.CPU_IMAGE_DEPTH) if cpu else None),
        overrides=overrides('image',
                            seed), row=definition.own_head_row('image'))
    definition.add_stage(config, align,
                   config_file='configs/msdi_alignment.py',
                   overrides=overrides('alignment', seed),
                   inputs={'audio': audio, 'image': image})
    sources = {'audio': audio, 'image': image, 'mm_audio': align,
               'mm_visual': align}
    for row in fusions:
      modalities = row.split('+')
      definition.add_stage(
          config, fusion_stage_name(modalities, seed),
          config_file='configs/msdi_fusion.py', config_arg=row,
          overrides=overrides('fusion', seed),
          inputs={m: sources[m] for m in modalities})
  config.final = f'audio_image_mm_audio_mm_visual_s{SEEDS[-1]}'
  definition.link_input_dims(config)
  return config
