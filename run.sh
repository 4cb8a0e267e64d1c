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

main_job() {
  local data=runs/data/synthetic shards=runs/data/synthetic_shards
  local albums=${MMGENRE_ALBUMS:-600}
  echo "[run.sh] 1/2 synthesising the embedded corpus ($albums albums) in $data"
  mmgenre synth --out "$data" --albums "$albums" --seed 0
  echo "[run.sh] 2/2 computing features and TFRecord shards in $shards"
  mmgenre prepare --dataset mumu --data "$data" --out "$shards"
  echo "[run.sh] data preparation done. Training (main.py) lands with the"
  echo "[run.sh] training issue; until then the main job stops here."
}

setup_venv
case "${1:-}" in
  "") main_job ;;
  test) shift; exec python -m pytest -q tests "$@" ;;
  *) exec "$@" ;;
esac
