"""The child of `benchmarks/frontend.py --sections predict`: two `mmgenre
predict` runs in this process (cold, then warm) with the model's front end
forced, printing {"cold_s", "warm_s"}.

A script of its own that imports nothing at its top: `mmgenre predict`'s
decoding workers start by re-importing the main module (forkserver), and
benchmarks/frontend.py imports librosa and JAX, seconds per worker that the
`mmgenre` command never pays.

  python benchmarks/frontend_predict.py --frontend jax_polyphase \
      --workdir runs/mumu_cosine --folder PIECES --decode-workers 2
"""

import sys


def main() -> int:
  # pylint: disable=g-import-not-at-top
  import argparse
  import json
  import os
  import tempfile
  import time
  sys.path.insert(0, os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  from input_pipeline.features import frontends
  from mmgenre_jax import cli
  from mmgenre_jax.tagging import inputs
  # pylint: enable=g-import-not-at-top
  parser = argparse.ArgumentParser()
  for flag in ('--frontend', '--workdir', '--folder', '--decode-workers'):
    parser.add_argument(flag, required=True)
  args, _ = parser.parse_known_args()
  # For the measurement only: tagging otherwise feeds a model the front end
  # it was trained on and refuses another (inputs.audio_frontend).
  front_end = frontends.named(args.frontend)
  inputs.audio_frontend = lambda stage, manifest: front_end
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    for run in ('cold', 'warm'):
      start = time.perf_counter()
      code = cli.main(['predict', '--workdir', args.workdir, '--audio',
                       args.folder, '--no-progress', '--out',
                       f'{tmp}/{run}.json', '--decode-workers',
                       args.decode_workers])
      if code:
        sys.exit(f'mmgenre predict exited with {code}')
      out[f'{run}_s'] = round(time.perf_counter() - start, 2)
  print(json.dumps(out))
  return 0


if __name__ == '__main__':
  sys.exit(main())
