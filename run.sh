#!/usr/bin/env bash
# Usage:
#   ./run.sh          set up .venv, then run the main job on the embedded default
#   ./run.sh test     set up .venv, then run the test suite
#   ./run.sh CMD ...  set up .venv, then run CMD inside it (e.g. ./run.sh mmgenre --help)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP="$VENV/.installed-$(sha256sum setup.py | cut -c1-16)"

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[run.sh] creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
  fi
  if [ ! -f "$STAMP" ]; then
    echo "[run.sh] installing the project and its pinned dependencies into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[test]'
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
  # Keep TensorFlow's C++ logging quiet and off any GPU: JAX owns the accelerator.
  export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
}

# The main job (./run.sh): the embedded synthetic corpus, its MuMu and MSD-I
# shards, the three pipelines of the paper at CPU scale (the ':cpu' config
# variants), then the report. Each step is skipped when its output is already
# there with the same settings, so a second run only prints the report.
# MMGENRE_ALBUMS and MMGENRE_IMAGE_SIZE change the corpus size and the side of
# the stored covers (64: CPU-sized; the paper's ResNet input is 224).
main_job() {
  local data=runs/data/synthetic
  local mumu=runs/data/mumu_shards msdi=runs/data/msdi_shards
  local albums=${MMGENRE_ALBUMS:-600} image_size=${MMGENRE_IMAGE_SIZE:-64}
  local start=$SECONDS
  echo "[run.sh] 1/5 embedded corpus ($albums albums, seed 0) in $data"
  if python - "$data" "$albums" <<'PY'
import json, pathlib, sys
from input_pipeline import synthetic
path = pathlib.Path(sys.argv[1]) / synthetic.SUMMARY_JSON
try:
  s = json.loads(path.read_text())
except (OSError, ValueError):
  sys.exit(1)
sys.exit(0 if (s.get('version') == synthetic.GENERATOR_VERSION and
               s.get('seed') == 0 and s.get('num_albums') == int(sys.argv[2]))
         else 1)
PY
  then
    echo "[run.sh]     already there (corpus_summary.json matches), skipped"
  else
    mmgenre synth --out "$data" --albums "$albums" --seed 0 --no-progress
  fi
  prepare_shards 2/5 mumu "$data" "$mumu" "$image_size" --enrichment "$data/enrichment.tsv"
  prepare_shards 3/5 msdi "$data" "$msdi" "$image_size"
  echo "[run.sh] 4/5 pipelines (CPU-sized ':cpu' variants), $((SECONDS - start)) s so far"
  local name
  for name in mumu_cosine mumu_logistic msdi; do
    echo "[run.sh]     $name -> runs/$name/"
    python main.py --config="configs/$name.py:cpu" --workdir="runs/$name"
  done
  echo "[run.sh] 5/5 report of every pipeline (runs/report.md, runs/results.json)"
  mmgenre report runs
  echo "[run.sh] main job done in $((SECONDS - start)) s"
}

# prepare_shards STEP DATASET DATA OUT IMAGE_SIZE [EXTRA ARGS]: runs
# `mmgenre prepare` unless OUT/manifest.json is complete with the same settings.
prepare_shards() {
  local step=$1 dataset=$2 data=$3 out=$4 image_size=$5
  shift 5
  echo "[run.sh] $step $dataset shards (covers ${image_size}px) in $out"
  if python - "$out" "$dataset" "$data" "$image_size" "$@" <<'PY'
import json, pathlib, sys
out, dataset, data, size, *extra = sys.argv[1:]
try:
  m = json.loads((pathlib.Path(out) / 'manifest.json').read_text())
except (OSError, ValueError):
  sys.exit(1)
a = m.get('args', {})
enrichment = extra[1] if extra[:1] == ['--enrichment'] else None
sys.exit(0 if (m.get('complete') and a.get('dataset') == dataset and
               a.get('data') == data and a.get('image_size') == int(size) and
               a.get('enrichment') == enrichment) else 1)
PY
  then
    echo "[run.sh]     already there (manifest.json complete, same settings), skipped"
  else
    mmgenre prepare --dataset "$dataset" --data "$data" --out "$out" \
      --image-size "$image_size" --no-progress "$@"
  fi
}

setup_venv
case "${1:-}" in
  "") main_job ;;
  # pytest.ini's testpaths makes tests/ the default; arguments (a file, -k,
  # -x) narrow or adjust the run.
  test) shift; exec python -m pytest -q "$@" ;;
  *) exec "$@" ;;
esac
