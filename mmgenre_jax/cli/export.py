"""`mmgenre export W --out DIR`: the model, one folder, in one of three formats.

  mmgenre export runs/mumu_cosine --out mumu_cosine_bundle
  mmgenre predict --workdir mumu_cosine_bundle --audio song.mp3
  mmgenre export runs/mumu_cosine --head moods_head --out moods_bundle
  mmgenre export runs/mumu_cosine --format onnx --out mumu_onnx
  python examples/onnx_tagger.py mumu_onnx song.mp3     # onnxruntime only

`--format bundle` (default): everything this package's Tagger needs
(mmgenre_jax/tagging/model/bundle.py). `onnx` and `stablehlo`: one graph per
entry point (audio, cover, text, fused) with export.json beside them
(mmgenre_jax/tagging/exports/writer.py), for runtimes without this package;
the PCM graphs (audio_pcm_<S>s, frontend_<S>s) compute the jax_polyphase
front end's features inside, so a model trained on another front end's
gets none, which a line on stderr and export.json's `pcm_graphs` say.
The decision thresholds, computed in memory when the model is loaded, are
written into the folder; the workdir is only read. Exit status 2 when W
cannot be read, the format is unknown, a head belongs to another model or
DIR cannot be written.
"""

import argparse
import json
import pathlib
import sys

from mmgenre_jax import workdir as workdir_lib
from mmgenre_jax.cli import flags
from mmgenre_jax.tagging import remote
from mmgenre_jax.tagging import tagger as tagger_lib
from mmgenre_jax.tagging.exports import writer

FORMATS = ('bundle',) + writer.FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('workdir', nargs='?', default=None,
                      help='Pipeline workdir, stage workdir or bundle.')
  parser.add_argument('--workdir', dest='workdir_flag', default=None,
                      help=argparse.SUPPRESS)
  parser.add_argument('--head', default=None, metavar='HEAD',
                      help='A finetuned head (mmgenre finetune) to bundle: '
                      'the bundle then answers with its labels.')
  parser.add_argument('--out', required=True, metavar='DIR',
                      help='New (or existing export) directory to write.')
  # Checked in main, not by argparse: a bad value is one line like the
  # command's other errors.
  parser.add_argument('--format', default='bundle', metavar='FORMAT',
                      help=f'One of {", ".join(FORMATS)} (default bundle): '
                      'onnx and stablehlo need neither this package nor '
                      'Python to run (docs/tagging.md, "Export").')


def main(args: argparse.Namespace) -> int:
  workdir = args.workdir or args.workdir_flag
  if not workdir:
    return flags.fail('export', ValueError(
        'give the workdir: mmgenre export W --out BUNDLE'))
  if args.format not in FORMATS:
    return flags.fail('export', ValueError(
        f'--format {args.format!r}: use one of {", ".join(FORMATS)}.'))
  try:
    tagger = tagger_lib.Tagger.from_workdir(workdir, head=args.head)
    # A gs:// --out is written locally, then uploaded.
    with remote.local_output(args.out) as local:
      note = None
      if args.format == 'bundle':
        tagger.export(local)
      else:
        info = json.loads((pathlib.Path(writer.write(
            tagger, local, args.format)) / workdir_lib.EXPORT_JSON
                           ).read_text(encoding='utf-8'))
        # Why there are no PCM graphs (writer.pcm_note), if so.
        note = (info['pcm_graphs'] or {}).get('note')
    out = args.out
  except (ValueError, OSError) as e:
    return flags.fail('export', e)
  except ImportError as e:
    return flags.fail('export', ValueError(
        f'--format {args.format} needs {e.name}: pip install '
        "'mmgenre_jax[onnx]' && pip install --no-deps jax2onnx==0.17.1 "
        f'({e}).'))
  if note:
    print(f'mmgenre export: {note}', file=sys.stderr)
  calibrated = [n for n, s in tagger.stages.items()
                if s.thresholds is not None]
  head = '' if tagger.head is None else f'; head {tagger.head.name!r}'
  print(f'Wrote {out} (stages {tagger.order}, final {tagger.final}; '
        f'thresholds for {calibrated or "no stage"}{head}).')
  return 0
