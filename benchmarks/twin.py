"""PyTorch twins of the paper's networks, for the benchmarks only.

Same shapes, same loss, same Adam as the JAX code of mmgenre_jax.models,
mmgenre_jax.core.losses and mmgenre_jax.train.train_state.create_optimizer:

  audio CNN: [conv (valid) -> ReLU -> max-pool (stride = window, floor) ->
    dropout] per block of specs.AUDIO_CNN_TABLE, flatten, Dense head
    (L2-normalised for COSINE);
  text MLP: dropout -> [Dense -> ReLU -> dropout] x 2 -> head;
  COSINE loss clip((1 - cos) / 2, 0, 1) against normalize(labels @ C_d);
  LOGISTIC loss: sigmoid binary cross-entropy, mean over labels;
  torch.optim.Adam(lr=1e-3) (optax.adam's defaults: b1 0.9, b2 0.999,
  eps 1e-8).

Layouts: the input comes as [B, 1, T, F] (NCHW); `channels_last` converts
the model and the input to torch.channels_last (NHWC in memory), which is
oneDNN's preferred CPU layout for convolutions. `pool_first=True` computes
each block as conv -> max-pool -> + bias -> ReLU, the same function reordered
as the JAX models.audio.ConvBlock does, so the twin gets that trick too.

torch is imported only by this module, never by the library.
"""

from typing import Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

Pair = Tuple[int, int]


class TorchAudioCNN(nn.Module):
  """Twin of mmgenre_jax.models.audio.AudioCNN (NCHW input [B, 1, T, F])."""

  def __init__(self, kernels: Sequence[Pair], filters: Sequence[int],
               pools: Sequence[Optional[Pair]], num_outputs: int,
               target: str, dropout: float, input_hw: Pair,
               pool_first: bool = False):
    super().__init__()
    self.target = target
    self.pool_first = pool_first
    self.pools = list(pools)
    self.dropout = dropout
    convs = []
    channels = 1
    t, f = input_hw
    for kernel, features, pool in zip(kernels, filters, pools):
      convs.append(nn.Conv2d(channels, features, tuple(kernel),
                             bias=not pool_first))
      channels = features
      t, f = t - kernel[0] + 1, f - kernel[1] + 1
      if pool is not None:
        t, f = t // pool[0], f // pool[1]
    self.convs = nn.ModuleList(convs)
    # With pool_first the bias is added after pooling (one per block).
    self.biases = nn.ParameterList(
        nn.Parameter(torch.zeros(f)) for f in filters) if pool_first else None
    self.head = nn.Linear(t * f * channels, num_outputs)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for i, (conv, pool) in enumerate(zip(self.convs, self.pools)):
      if self.pool_first:
        x = conv(x)
        if pool is not None:
          x = F.max_pool2d(x, pool, pool)
        x = F.relu(x + self.biases[i].view(1, -1, 1, 1))
      else:
        x = F.relu(conv(x))
        if pool is not None:
          x = F.max_pool2d(x, pool, pool)
      if self.dropout > 0:
        x = F.dropout(x, self.dropout, self.training)
    y = self.head(torch.flatten(x, 1))
    if self.target == 'cosine':
      y = F.normalize(y, dim=-1, eps=1e-12)
    return y


class TorchMLP(nn.Module):
  """Twin of mmgenre_jax.models.text.MLP."""

  def __init__(self, input_dim: int, hidden_units: Sequence[int],
               num_outputs: int, target: str, dropout: float):
    super().__init__()
    self.target = target
    self.dropout = dropout
    widths = [input_dim] + list(hidden_units)
    self.hidden = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
    self.head = nn.Linear(widths[-1], num_outputs)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.dropout > 0:
      x = F.dropout(x, self.dropout, self.training)
    for layer in self.hidden:
      x = F.relu(layer(x))
      if self.dropout > 0:
        x = F.dropout(x, self.dropout, self.training)
    y = self.head(x)
    if self.target == 'cosine':
      y = F.normalize(y, dim=-1, eps=1e-12)
    return y


def loss_fn(target: str):
  """(output [B, K], labels [B, L], label_factors [L, d] | None) -> loss."""
  if target == 'cosine':
    def cosine(output, labels, label_factors):
      item = F.normalize(labels @ label_factors, dim=-1, eps=1e-12)
      cos = (F.normalize(output, dim=-1, eps=1e-12) * item).sum(-1)
      return torch.clamp((1.0 - cos) / 2.0, 0.0, 1.0).mean()
    return cosine
  if target == 'logistic':
    def logistic(output, labels, label_factors):
      del label_factors
      return F.binary_cross_entropy_with_logits(output, labels)
    return logistic
  raise ValueError(f'No torch twin loss for target {target!r}.')


def make_step(model: nn.Module, target: str, *, learning_rate: float,
              compile_model: bool = False):
  """A train step closure (x, labels, label_factors) -> loss tensor."""
  model.train()
  optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
  forward = torch.compile(model) if compile_model else model
  loss = loss_fn(target)

  def step(x, labels, label_factors):
    optimizer.zero_grad(set_to_none=True)
    value = loss(forward(x), labels, label_factors)
    value.backward()
    optimizer.step()
    return value

  return step


def device_sync(device: str) -> None:
  if device.startswith('cuda'):
    torch.cuda.synchronize()
