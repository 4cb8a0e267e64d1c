"""Installs mmgenre_jax, its input pipeline and its experiment configs.

The versions are pinned to a set seen to install and import together on a
clean Python 3.11 machine (CPU). On a GPU or TPU host, install the matching
accelerator build of jax on top (e.g. `pip install "jax[cuda12]==0.10.2"`).
"""

import setuptools

INSTALL_REQUIRES = [
    'jax==0.10.2',
    'jaxlib==0.10.2',
    'flax==0.12.8',
    'optax==0.2.8',
    'orbax-checkpoint==0.12.8',
    # Workdir and shard paths, local or gs:// (docs/tpu_pod.md §4).
    'etils[epath]==1.15.0',
    # epath's backend for gs:// (input_pipeline/fileio.py; docs/scale.md).
    'gcsfs==2026.10.1',
    'fsspec==2026.9.0',
    # TFRecord checksums of gs:// shards read through gcsfs
    # (input_pipeline/records/object_records.py); gcsfs pulls it in too.
    'google-crc32c==1.9.0',
    'tensorflow-cpu==2.21.0',
    # clu's metric writers need TensorBoard; TF no longer pulls it in.
    'tensorboard==2.21.0',
    'tensorflow-datasets==4.9.10',
    # The `tfds build` command of tensorflow-datasets 4.9.10 imports both
    # without declaring them (input_pipeline/tfds; docs/scale.md).
    'mlcroissant==1.1.1',
    'importlib_resources==7.1.0',
    'librosa==0.11.0',
    # Reads wav/flac/ogg/mp3 with no system library.
    'soundfile==0.14.0',
    'scikit-learn==1.9.1',
    'ml-collections==1.1.0',
    'clu==0.0.12',
    'numpy==2.4.6',
    'scipy==1.17.1',
    # apache-beam 2.77.0 needs pillow < 13.
    'pillow==12.3.0',
    # Figures (mmgenre_jax/core/plots.py), Agg backend: no display needed.
    'matplotlib==3.11.2',
    'tqdm==4.70.1',
    'absl-py==2.5.1',
    # Preparation and catalog tagging past one machine (docs/scale.md):
    # DirectRunner here; Dataflow, Flink and Spark through their options.
    'apache-beam==2.77.0',
]

setuptools.setup(
    name='mmgenre_jax',
    version='0.1.0',
    description=('JAX/Flax reimplementation of Oramas et al. (2018), '
                 'Multimodal Deep Learning for Music Genre Classification.'),
    python_requires='>=3.11',
    packages=setuptools.find_packages(
        include=['mmgenre_jax', 'mmgenre_jax.*', 'input_pipeline',
                 'input_pipeline.*', 'configs', 'configs.*']),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist runs the suite over the cores (./run.sh test).
        'test': ['pytest==9.2.0', 'psutil==7.2.2', 'pytest-xdist==3.8.0',
                 'execnet==2.1.2',
                 # The ONNX export's tests (tests/mmgenre_jax/tagging/exports).
                 'onnx==1.23.2', 'onnx-ir==1.1.0', 'onnxruntime==1.32.0',
                 # A GCS server on 127.0.0.1 (tests/helpers/gcs_emulator.py)
                 # and a local Dask cluster (tests/helpers/dask_cluster.py).
                 'gcp-storage-emulator==2026.7.19', 'dask==2026.8.0',
                 'distributed==2026.8.0'],
        # PyTorch twin for benchmarks/ only; never a dependency of the library.
        'bench': ['torch==2.13.0'],
        # A gs:// workdir: orbax asks GCS about the bucket through it
        # (docs/tpu_pod.md §4). Seen to install beside the pins above.
        'gcs': ['google-cloud-storage==3.17.2'],
        # `mmgenre export --format onnx` and examples/onnx_tagger.py
        # (docs/tagging.md, "Export"). jax2onnx==0.17.1 itself goes in with
        # `pip install --no-deps` (run.sh does): its metadata asks for
        # orbax-checkpoint<0.11.37, orbax-export, equinox and others that
        # the conversion never imports, and would downgrade the pin above.
        'onnx': ['onnx==1.23.2', 'onnx-ir==1.1.0', 'onnxruntime==1.32.0'],
        # Beam on Dataflow (docs/scale.md); not needed for the local runner.
        'gcp': ['apache-beam[gcp]==2.77.0'],
        # Beam's DaskRunner on a dask.distributed cluster (docs/scale.md).
        'dask': ['apache-beam[dask]==2.77.0', 'dask==2026.8.0',
                 'distributed==2026.8.0'],
    },
    entry_points={'console_scripts': ['mmgenre=mmgenre_jax.cli:main']},
)
