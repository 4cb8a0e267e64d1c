"""The model as portable graphs: `mmgenre export --format onnx|stablehlo`.

  graphs.py   the model's entry points (audio, cover, text, fused) and the
              PCM front end as pure JAX functions of arrays
  pcm.py      the audio entry point from PCM (front end + windows inside)
  writer.py   ONNX (jax2onnx) and StableHLO (jax.export) files, and the
              export.json beside them
"""
