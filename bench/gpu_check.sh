#!/usr/bin/env bash
# One-shot GPU check: train the demand and recommender models in 1 process on one GPU with
# each backend (in-process, TorchDistributor use_gpu=True, Horovod with NCCL) next to CPU
# training on the same machine, and merge the samples/s rows into
# bench/results/training.json (the CPU rows stay; the run's machine goes under "gpu_run").
#
#   bench/gpu_check.sh            on a CUDA machine (fails at once, one line, without one)
#   bench/gpu_check.sh --dry-run  anywhere: the same path on the CPU with tiny data
#                                 (use_gpu off, Horovod not rebuilt), JSON under bench/work/
#
# Planned for a fresh, offline machine (the device tool's H100: 16 cores, python3 with a CUDA
# torch, nvcc, cmake; no pyspark, no Java, no network), in <= 10 minutes:
# * Python: $GPU_CHECK_PYTHON, else .venv/bin/python when it imports torch, else python3. Wheels in .whl/ are
#   installed to /tmp/shikong-site first (pip --no-index; not in a dry run), so carry what
#   that python lacks.
# * Horovod: built by scripts/install_horovod.sh with NCCL (SHIKONG_HOROVOD_GPU=1, all cores,
#   kernels for this GPU only) when it is missing or CPU-only; offline it needs the sdist
#   and cffi (a build requirement) carried:
#     python3 -m pip download --no-deps --no-binary :all: horovod==0.28.1 -d .whl
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl cffi pycparser
#   then run with carry [".whl"]. The build is capped at GPU_CHECK_HOROVOD_TIMEOUT s (300);
#   if it fails the Horovod rows say why and the rest still runs.
# * TorchDistributor needs pyspark 4 and a Java runtime (about 470 MB: more than the
#   device tool carries); without them its rows have no value and say why.
# * $OUT (the device tool's return folder), when set, receives training.json and the log;
#   GPU_CHECK_COMMIT names the commit where the copied tree has no .git.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

dry=0
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    *) echo "gpu_check: unknown argument $a (use --dry-run)" >&2; exit 2 ;;
  esac
done

py=${GPU_CHECK_PYTHON:-.venv/bin/python}
"$py" -c 'import torch' >/dev/null 2>&1 || py=python3
"$py" -c 'import torch' >/dev/null 2>&1 || {
  echo "gpu_check: no Python with torch (.venv/bin/python, python3; or set GPU_CHECK_PYTHON)" >&2
  exit 1
}
export PYTHONPATH=$root/lib${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1

if [ "$dry" = 0 ]; then
  if ! gpu=$("$py" -c 'import torch; assert torch.cuda.is_available(); print(torch.cuda.get_device_name(0))' 2>/dev/null); then
    echo "gpu_check: no CUDA device visible to torch ($py); run it on a GPU machine, or use --dry-run" >&2
    exit 1
  fi
  echo "gpu_check: $gpu, $("$py" -c 'import sys, torch; print(sys.version.split()[0], torch.__version__)'), $(nproc) cores"
fi
if [ "$dry" = 0 ] && compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/shikong-site .whl/*.whl
  export PYTHONPATH=/tmp/shikong-site${PYTHONPATH:+:$PYTHONPATH}
fi

log=${OUT:-bench/work}/gpu_check.log
mkdir -p "$(dirname "$log")"
: >"$log"
start=$(date +%s)

if [ "$dry" = 0 ]; then
  sdist=$(compgen -G ".whl/horovod-*.tar.gz" | head -1 || true)
  HOROVOD_PYTHON=$py SHIKONG_HOROVOD_GPU=1 bash scripts/install_horovod.sh --plan | tee -a "$log" || true
  echo "gpu_check: Horovod with NCCL (build log: $log)"
  if ! HOROVOD_PYTHON=$py SHIKONG_HOROVOD_GPU=1 HOROVOD_JOBS=$(nproc) HOROVOD_NICE=0 \
    HOROVOD_SDIST=${sdist:-} timeout "${GPU_CHECK_HOROVOD_TIMEOUT:-300}" \
    bash scripts/install_horovod.sh >>"$log" 2>&1; then
    echo "gpu_check: Horovod build failed (last lines below); going on without it"
    tail -15 "$log"
  fi
  tail -2 "$log"
fi

args=(--device gpu)
[ "$dry" = 1 ] && args+=(--dry-run)
"$py" bench/training.py "${args[@]}" 2>&1 | tee -a "$log"
json=bench/results/training.json
[ "$dry" = 1 ] && json=bench/work/results-gpu-dry/training.json
[ -z "${OUT:-}" ] || cp "$json" "$OUT/training.json"
echo "gpu_check: done in $(($(date +%s) - start)) s; rows merged into $json${OUT:+ (copy: \$OUT/training.json)}"
