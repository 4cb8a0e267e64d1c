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
    # Without its declared dependencies, which conflict with the pins
    # (setup.py, the 'onnx' extra).
    "$VENV/bin/python" -m pip install --quiet --no-deps 'jax2onnx==0.17.1'
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
}

# The main job (./run.sh): the embedded synthetic corpus, its MuMu and MSD-I
# shards, the three pipelines of the paper at CPU scale (the ':cpu' config
# variants), then the report. Each command skips work whose output is already
# complete with the same settings (`mmgenre synth` and `mmgenre prepare` check
# their summary / manifest, a pipeline its stages), so a second run only
# prints the report. MMGENRE_ALBUMS and MMGENRE_IMAGE_SIZE change the corpus
# size and the side of the stored covers (64: CPU-sized; the paper's ResNet
# input is 224).
main_job() {
  local data=runs/data/synthetic
  local mumu=runs/data/mumu_shards msdi=runs/data/msdi_shards
  local albums=${MMGENRE_ALBUMS:-600} image_size=${MMGENRE_IMAGE_SIZE:-64}
  local start=$SECONDS
  echo "[run.sh] 1/5 embedded corpus ($albums albums, seed 0) in $data"
  mmgenre synth --out "$data" --albums "$albums" --seed 0 --no-progress
  echo "[run.sh] 2/5 mumu shards (covers ${image_size}px) in $mumu"
  mmgenre prepare --dataset mumu --data "$data" --out "$mumu" \
    --image-size "$image_size" --no-progress --enrichment "$data/enrichment.tsv"
  echo "[run.sh] 3/5 msdi shards (covers ${image_size}px) in $msdi"
  mmgenre prepare --dataset msdi --data "$data" --out "$msdi" \
    --image-size "$image_size" --no-progress
  echo "[run.sh] 4/5 pipelines (CPU-sized ':cpu' variants), $((SECONDS - start)) s so far"
  local name
  for name in mumu_cosine mumu_logistic msdi; do
    echo "[run.sh]     $name -> runs/$name/"
    python main.py --config="configs/$name.py:cpu" --workdir="runs/$name"
  done
  # Each pipeline drew its figures (W/figures/) when it ended; the report over
  # all of them links those instead of drawing them again.
  echo "[run.sh] 5/5 report of every pipeline (runs/report.md, runs/results.json)"
  mmgenre report runs --no-figures
  echo "[run.sh] main job done in $((SECONDS - start)) s"
}

setup_venv
case "${1:-}" in
  "") main_job ;;
  # pytest.ini's testpaths makes tests/ the default; arguments (a file, -k,
  # -x) narrow or adjust the run. The suite runs in one pytest-xdist worker
  # per core, a test file per worker at a time (its module fixtures are
  # built once); `./run.sh test -n 0` runs it in this process.
  test) shift; exec python -m pytest -q -n auto --dist loadfile "$@" ;;
  *) exec "$@" ;;
esac
