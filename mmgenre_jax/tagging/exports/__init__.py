"""The model as portable graphs: `mmgenre export --format onnx|stablehlo`.

  graphs.py   the model's entry points (audio, cover, text, fused) and the
              PCM front end as pure JAX functions of arrays
  writer.py   ONNX (jax2onnx) and StableHLO (jax.export) files, and the
              export.json beside them
"""
