"""Default hyperparameters of mmgenre_jax: every field, commented.

Experiment files (configs/mumu_audio.py, ...) import this and override a few
fields; any field can also be overridden on the command line:

  python main.py --config=configs/mumu_audio.py:high-4x70-cosine \
      --workdir=runs/audio --config.train.batch_size=64

config.model.num_outputs follows config.data (factor_dim for COSINE,
num_labels otherwise) through a reference: experiment files change the target
with set_target(), and on the command line one overrides the data field.
"""

import ml_collections

from mmgenre_jax.core import targets
from mmgenre_jax.models import specs


# Weight decay of the image network, on all weights and biases (Sec 3.2:
# "weight decay is applied to all weights and biases (i.e., not focusing on
# convolutional layers only)": batch-norm scales and biases and the output
# head included, train_state.create_optimizer). The paper gives no value;
# 1e-4 is the authors' Lua Torch code's (docs/fidelity.md, the image recipe).
IMAGE_WEIGHT_DECAY = 1e-4
# The image network's training in the paper's text (Sec 3.2, 6.2, 7.3.3; the
# default): Adam, lr 1e-4, mini-batches of 50, 90 epochs ("once the
# network converges": no early stopping, patience = the epoch count; the
# best validation checkpoint is still the one kept).
IMAGE_TRAINING = {'optimizer': 'adam', 'learning_rate': 1e-4,
                  'weight_decay': IMAGE_WEIGHT_DECAY, 'lr_decay_epochs': 0,
                  'batch_size': 50, 'num_epochs': 90, 'patience': 90}
# The authors' Lua Torch fine-tuning (docs/fidelity.md, the image recipe; the
# configs' '-sgd' variants): SGD with Nesterov momentum 0.9, lr 1e-4, batch
# 50, weight decay 1e-4 on all weights, lr x0.1 every 30 epochs, 90 epochs.
IMAGE_TRAINING_SGD = {'optimizer': 'sgd', 'learning_rate': 1e-4,
                      'momentum': 0.9, 'weight_decay': IMAGE_WEIGHT_DECAY,
                      'lr_decay_epochs': 30, 'lr_decay_factor': 0.1,
                      'batch_size': 50, 'num_epochs': 90, 'patience': 90}
# The image network's recipes, by name (set_image_optimizer).
IMAGE_RECIPES = {'adam': IMAGE_TRAINING, 'sgd': IMAGE_TRAINING_SGD}


def set_target(config: ml_collections.ConfigDict, target: str) -> None:
  """Sets config.model.target and links num_outputs to its data field.

  Args:
    config: a config from get_config(), changed in place.
    target: 'logistic', 'cosine' or 'softmax'.
  """
  # The config.data field that sizes the output layer (Target.
  # output_size_field): COSINE predicts a label-factor vector, the others one
  # score per label.
  output_size_field = targets.get(target).output_size_field
  config.model.target = target
  # Assigning over a field that holds a reference would set the referenced
  # data field instead (relinking factor_dim and num_labels), so the old
  # reference is removed first.
  if 'num_outputs' in config.model:
    del config.model['num_outputs']
  config.model.num_outputs = config.data.get_ref(output_size_field)


def set_image_optimizer(config: ml_collections.ConfigDict,
                        recipe: str = 'adam') -> None:
  """The image network's training: 'adam' (the paper's text, IMAGE_TRAINING)
  or 'sgd' (the authors' code, IMAGE_TRAINING_SGD)."""
  if recipe not in IMAGE_RECIPES:
    raise ValueError(f'Unknown image recipe {recipe!r}; use one of '
                     f'{tuple(IMAGE_RECIPES)}.')
  for field, value in IMAGE_RECIPES[recipe].items():
    config.train[field] = value


def get_config() -> ml_collections.ConfigDict:
  """The default configuration: MuMu, audio CNN HIGH-4x70, COSINE."""
  config = ml_collections.ConfigDict()

  # ------------------------------------------------------------------ data
  config.data = ml_collections.ConfigDict()
  # 'mumu' (multi-label albums, Sec 7) or 'msdi' (single-label tracks, Sec 6).
  config.data.dataset = 'mumu'
  # Output directory of `mmgenre prepare` (manifest.json, TFRecord shards;
  # docs/data_formats.md §3). Empty: must be given for training.
  config.data.shard_dir = ''
  # Where a shard network reads its records: 'shards' (the TFRecords in
  # shard_dir) or 'tfds' (the TFDS datasets `{dataset}/{record kind}`, e.g.
  # mumu/audio and mumu/audio_windows, built by input_pipeline/tfds from
  # the same corpus and settings into tfds_data_dir; docs/scale.md). The
  # same examples and batches either way.
  config.data.source = 'shards'
  # source='tfds': the TFDS data_dir of the datasets; '' is TFDS's default
  # ($TFDS_DATA_DIR, else ~/tensorflow_datasets).
  config.data.tfds_data_dir = ''
  # Genre labels: MuMu keeps the 250 labels on >= 12 albums (Sec 7.1.1).
  config.data.num_labels = 250
  # d, the dimension of the PPMI-SVD label factors of COSINE (Sec 5.1; 50 in
  # Sec 7.3).
  config.data.factor_dim = 50
  # COSINE: a directory of label factors to train on (label_factors.npy and
  # labels.tsv, as `mmgenre factorize` writes them) instead of factorising
  # this stage's own train + val items. The pipelines set it to
  # W/label_factors, factorised once from the shards' train + val albums, so
  # that every COSINE stage of a pipeline regresses the same targets.
  config.data.label_factors = ''
  # Size of the tf-idf vocabulary, the text MLP's input (Sec 7.3.2: "limited
  # to 10k").
  config.data.text_vocab_size = 10000
  # TIMBRE baseline input: mean, max, variance, L2-norm of the 12 MSD timbre
  # coefficients (Sec 7.3.1).
  config.data.timbre_dim = 48
  # Side of the square image fed to ResNet (centre crop 224, docs/fidelity.md);
  # the shards store covers at round(image_size * 256 / 224) (manifest
  # stored_image_size), evaluation takes their centre crop.
  config.data.image_size = 224
  # Side S of the stored covers the crops are taken from: filled in from the
  # shards' manifest (stored_image_size) when a stage starts; 0 = not yet.
  config.data.stored_image_size = 0
  # Training augmentation of the covers (Sec 3.2; fields and their meaning:
  # input_pipeline.records.augment.ImageAugment): random-resized crops
  # (crop_area fraction of the stored cover, crop_aspect), colour jitter
  # (brightness, contrast, saturation), PCA lighting noise (lighting), flips.
  config.data.image_augment = ml_collections.ConfigDict(
      dict(specs.IMAGE_AUGMENT))
  # Fusion / alignment stages only (docs/workdirs.md §2): representation name
  # -> the stage workdir that extracted it, e.g. {'audio': 'W/audio', 'text':
  # 'W/text'} reads W/audio/representations/audio/<split>.npz, ... The inputs
  # are joined on their item ids. Empty for networks trained on shards.
  config.data.inputs = ml_collections.ConfigDict()

  # ----------------------------------------------------------------- model
  config.model = ml_collections.ConfigDict()
  # Network, a key of mmgenre_jax.models.MODEL_NAMES: audio_cnn,
  # msdi_audio_cnn, text_mlp, timbre_mlp, resnet, alignment, fusion.
  config.model.name = 'audio_cnn'
  # Output configuration (config.model.target): 'logistic' (sigmoid + BCE),
  # 'cosine' (linear + L2 normalisation, label factors) or 'softmax'
  # (single-label); set_target also links config.model.num_outputs, K, the
  # width of the output layer, to factor_dim (COSINE) or num_labels.
  set_target(config, 'cosine')
  # Audio CNN width, 'low' or 'high' (Sec 7.3.1 filter counts).
  config.model.width = 'high'
  # Audio CNN kernel family, '3x3', '4x96' or '4x70' (Table 5).
  config.model.kernels = '4x70'
  # Dropout rate; None takes the paper's rate for the network and target
  # (audio: 0.5 only for HIGH + COSINE; text 0.5; fusion 0 / 0.5 / 0.7).
  config.model.dropout = ml_collections.FieldReference(
      None, field_type=float)
  # Computation dtype of the network bodies ('float32' or 'bfloat16'); output
  # heads and losses always run in float32.
  config.model.dtype = 'float32'
  # How the audio CNN computes convs spanning >= half the frequency bins
  # (models.audio.CONV_LAYOUTS): 'freq_channels' (1-D conv over time, bins as
  # channels; much faster on CPU) or 'nhwc' (nn.Conv). Same parameters and
  # outputs either way, so checkpoints are interchangeable.
  config.model.conv_layout = 'freq_channels'
  # ResNet only: path of ImageNet weights in torchvision layout (.npz, see
  # mmgenre_jax/models/image.py) loaded into the body after initialisation
  # (Sec 3.2: ResNet-101 "initialized with pretrained parameters learned on
  # ImageNet", then fine-tuned); '' starts from a fresh initialisation, which
  # a torchvision depth allows only with from_scratch. The output head is
  # always fresh.
  config.model.pretrained = ''
  # ResNet only: True trains a torchvision depth (18, 34, 50, 101) without
  # ImageNet weights; False (the paper, Sec 3.2) refuses to start the image
  # stage without config.model.pretrained (train_state.check_image_init).
  # The 'tiny' ResNet has no ImageNet weights and always starts fresh.
  config.model.from_scratch = False
  # Alignment only: margin m of the negative terms (Sec 3.4: 0.5 was best).
  config.model.margin = specs.ALIGNMENT_MARGIN

  # ----------------------------------------------------------------- train
  config.train = ml_collections.ConfigDict()
  # Training (Sec 6.2, 7.3.1): Adam with the default parameters, lr 1e-3
  # (docs/fidelity.md).
  # 'sgd' is SGD with Nesterov momentum config.train.momentum, the image
  # network's optimizer in the authors' code (set_image_optimizer).
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  # SGD momentum (unused by Adam).
  config.train.momentum = IMAGE_TRAINING_SGD['momentum']
  # Added to the gradient as weight_decay * params (torch's weight_decay);
  # 0 = none (the image network: IMAGE_WEIGHT_DECAY on all weights).
  config.train.weight_decay = 0.0
  # Step schedule: the learning rate is multiplied by lr_decay_factor every
  # lr_decay_epochs epochs; 0 = constant rate.
  config.train.lr_decay_epochs = 0
  config.train.lr_decay_factor = IMAGE_TRAINING_SGD['lr_decay_factor']
  # Mini-batches of 32 items (Sec 6.2, 7.3.2).
  config.train.batch_size = 32
  # At most 100 epochs (Sec 6.2) ...
  config.train.num_epochs = 100
  # ... with early stopping on the validation loss after 4 epochs without
  # improvement (docs/fidelity.md); the best checkpoint is kept.
  config.train.patience = 4
  # Seed of parameter init, dropout and shuffling. Single-label results are
  # reported over seeds 0, 1, 2 (Sec 6.3: 3 runs).
  config.train.seed = 0
  # Stop after this many optimisation steps in all (a resumable cut, e.g.
  # to test a kill and resume); 0 = only the epochs and early stopping end
  # training.
  config.train.max_steps = 0
  # Training loss and parameter norm are logged every this many steps (and
  # at every epoch end).
  config.train.log_every_steps = 50

  # ------------------------------------------------------------------ eval
  config.eval = ml_collections.ConfigDict()
  # Items per evaluation batch (no gradients, so larger than training).
  config.eval.batch_size = 64
  # N of the aggregated diversity ADiv@N (Sec 7.2, Table 6).
  config.eval.adiv_top_n = (1, 3, 5)
  # Whole-track prediction (docs/fidelity.md): drop this fraction at each end,
  # then average 322-frame windows overlapping by window_overlap.
  config.eval.track_trim = 0.15
  config.eval.window_overlap = 0.5

  return config
