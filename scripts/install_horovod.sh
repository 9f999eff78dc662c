#!/usr/bin/env bash
# Build Horovod 0.28.1 from source: PyTorch + Gloo, plus CUDA/NCCL GPU operations when the
# machine has a CUDA toolchain (no MPI/TensorFlow/MXNet).
#
# Why a script: 0.28.1 is Horovod's last release and its CMake files pin C++14
# (CMAKE_CXX_STANDARD 14), which PyTorch's headers reject. A compiler wrapper rewrites
# -std=c++14 (and gnu++14): to C++17 for Horovod's own and third-party sources, and for the
# units that include torch headers to the standard the installed torch demands (C++20 when
# its headers say "C++20 or later compatible compiler is required", as torch 2.15's do,
# else C++17). The [spark] extra is NOT installed: it pins pyarrow<11, which breaks
# pyspark 4 and numpy 2; horovod.spark.run itself only needs pyspark, pyarrow and numpy,
# which the project already has.
#
# GPU or CPU: the GPU build (HOROVOD_GPU_OPERATIONS=NCCL) is chosen when torch was built
# with CUDA, nvcc is found ($HOROVOD_CUDA_HOME, $CUDA_HOME, $CUDA_PATH, PATH or
# /usr/local/cuda) and NCCL's nccl.h and library are found ($HOROVOD_NCCL_HOME, or
# $HOROVOD_NCCL_INCLUDE + $HOROVOD_NCCL_LIB, else the CUDA toolkit, the system folders, or
# the nvidia-nccl-cu* wheel torch depends on). No GPU device is needed to build. Otherwise
# the CPU build (Gloo). SHIKONG_HOROVOD_GPU=auto (default) | 1 (GPU or fail) | 0 (CPU).
# HOROVOD_BUILD_CUDA_CC_LIST (e.g. 90) limits the CUDA kernels to those compute
# capabilities; default: the visible GPU's, else every one nvcc knows.
#
# Other settings: HOROVOD_PYTHON (default .venv/bin/python), HOROVOD_SDIST (a local
# horovod-0.28.1.tar.gz for a machine without network; default: PyPI), HOROVOD_JOBS
# (parallel compile jobs, default 2: the shared 2-core machine).
#
# `install_horovod.sh --plan` prints which build this machine gets and builds nothing.
#
# Idempotent: exits at once when horovod.torch already imports and has the operations this
# machine can have (a CPU-only Horovod on a CUDA machine is rebuilt with NCCL), so the
# build is cached in .venv (cache .venv in CI). A CPU build takes about 7-9 minutes on 2
# cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${HOROVOD_PYTHON:-.venv/bin/python}
version=0.28.1
want_gpu=${SHIKONG_HOROVOD_GPU:-auto}

[ -x "$py" ] || command -v "$py" >/dev/null || {
  echo "horovod: $py not found; run scripts/setup.sh first" >&2
  exit 1
}

# ---- what this machine can build: CUDA toolkit + NCCL, or CPU only
gpu=0
why_cpu=""
cuda_home=""
nccl_inc=""
nccl_lib=""
find_cuda() {
  local torch_cuda nvcc=""
  torch_cuda=$("$py" -c 'import torch; print(torch.version.cuda or "")' 2>/dev/null || true)
  if [ -z "$torch_cuda" ]; then why_cpu="torch was built without CUDA"; return 1; fi
  for home in "${HOROVOD_CUDA_HOME:-}" "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
    if [ -n "$home" ] && [ -x "$home/bin/nvcc" ]; then nvcc="$home/bin/nvcc"; break; fi
  done
  [ -n "$nvcc" ] || nvcc=$(command -v nvcc || true)
  [ -n "$nvcc" ] || { [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc; } || true
  if [ -z "$nvcc" ]; then why_cpu="torch has CUDA $torch_cuda but nvcc was not found"; return 1; fi
  cuda_home=$(cd "$(dirname "$(readlink -f "$nvcc")")/.." && pwd)
  # NCCL: explicit settings first, then the toolkit and system folders, then the wheel.
  local cands=()
  if [ -n "${HOROVOD_NCCL_HOME:-}" ]; then
    cands+=("${HOROVOD_NCCL_HOME}/include:${HOROVOD_NCCL_HOME}/lib")
    cands+=("${HOROVOD_NCCL_HOME}/include:${HOROVOD_NCCL_HOME}/lib64")
  fi
  if [ -n "${HOROVOD_NCCL_INCLUDE:-}" ] && [ -n "${HOROVOD_NCCL_LIB:-}" ]; then
    cands+=("${HOROVOD_NCCL_INCLUDE}:${HOROVOD_NCCL_LIB}")
  fi
  cands+=("$cuda_home/include:$cuda_home/lib64" "$cuda_home/include:$cuda_home/lib")
  cands+=("/usr/include:/usr/lib/x86_64-linux-gnu" "/usr/include:/usr/lib64")
  local wheel
  wheel=$("$py" - <<'EOF' 2>/dev/null || true
import os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
inc = lib = None
for base in nvidia.__path__:
    for d, _, files in os.walk(base):
        if "nccl.h" in files and inc is None:
            inc = d
        if lib is None and any(f.startswith("libnccl.so") for f in files):
            lib = d
if inc and lib:
    print(f"{inc}:{lib}")
EOF
)
  [ -z "$wheel" ] || cands+=("$wheel")
  local c inc lib
  for c in "${cands[@]}"; do
    inc=${c%%:*}
    lib=${c#*:}
    if [ -f "$inc/nccl.h" ] && compgen -G "$lib/libnccl.so*" >/dev/null; then
      nccl_inc=$inc
      nccl_lib=$lib
      return 0
    fi
  done
  why_cpu="CUDA $torch_cuda and $nvcc found, but no nccl.h + libnccl.so (set HOROVOD_NCCL_HOME)"
  return 1
}
case "$want_gpu" in
  0 | no) why_cpu="SHIKONG_HOROVOD_GPU=$want_gpu" ;;
  *)
    if find_cuda; then gpu=1; fi
    if [ "$gpu" = 0 ] && [ "$want_gpu" != auto ]; then
      echo "horovod: SHIKONG_HOROVOD_GPU=$want_gpu but no GPU build is possible: $why_cpu" >&2
      exit 1
    fi
    ;;
esac

if [ "${1:-}" = "--plan" ]; then
  # Say which build this machine gets, build nothing (used by bench/gpu_check.sh).
  if [ "$gpu" = 1 ]; then
    echo "horovod plan: GPU build (NCCL); CUDA $cuda_home; nccl.h in $nccl_inc; libnccl in $nccl_lib"
  else
    echo "horovod plan: CPU build (Gloo): $why_cpu"
  fi
  exit 0
fi

# ---- already there? (checked in a child: never load the extension into a long-lived process)
if have=$("$py" -c 'import horovod, horovod.torch as h; print(horovod.__version__, int(h.nccl_built()))' 2>/dev/null); then
  if [ "$gpu" = 0 ] || [ "${have#* }" = 1 ]; then
    echo "horovod: already installed (${have% *}, NCCL $([ "${have#* }" = 1 ] && echo yes || echo no))"
    exit 0
  fi
  echo "horovod: ${have% *} is installed without NCCL on a CUDA machine: rebuilding with NCCL"
fi
for tool in cmake g++ make; do
  command -v "$tool" >/dev/null || { echo "horovod: '$tool' is required to build Horovod" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shikong-horovod.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
real_cxx=$(command -v g++)
torch_inc=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
torch_std=17
if grep -qs 'C++20 or later' "$torch_inc/ATen/ATen.h"; then torch_std=20; fi
cat > "$tmp/cxx" <<EOF
#!/usr/bin/env bash
# Horovod asks for C++14; PyTorch's headers refuse it. Units that include torch headers get
# the standard torch needs (C++$torch_std), everything else C++17.
std=17
for a in "\$@"; do
  case "\$a" in */torch/include*) std=$torch_std ;; esac
done
args=()
for a in "\$@"; do
  case "\$a" in
    -std=c++14) args+=("-std=c++\$std") ;;
    -std=gnu++14) args+=("-std=gnu++\$std") ;;
    *) args+=("\$a") ;;
  esac
done
exec "$real_cxx" "\${args[@]}"
EOF
chmod +x "$tmp/cxx"

# Runtime requirements from Horovod's install_requires (cffi is listed for PyTorch builds).
# Only the missing ones are installed (none on a machine without network that has them);
# packages already there are left at their versions, never downgraded.
missing=$("$py" - <<'EOF'
import importlib.util
mods = {"cloudpickle": "cloudpickle", "psutil": "psutil", "yaml": "pyyaml",
        "packaging": "packaging", "cffi": "cffi>=1.4.0"}
print(" ".join(req for mod, req in mods.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086 - a list of requirement strings
  "$py" -m pip install -q $missing
fi

gpu_env=()
if [ "$gpu" = 1 ]; then
  # The nvidia-nccl wheel ships only libnccl.so.2; CMake's find_library wants libnccl.so.
  # At run time the extension finds libnccl.so.2 already loaded by torch.
  mkdir -p "$tmp/nccl/lib"
  libs=("$nccl_lib"/libnccl.so*)
  ln -s "${libs[0]}" "$tmp/nccl/lib/libnccl.so"
  # One architecture (the visible GPU's) keeps the CUDA part of the build short.
  cc_list=${HOROVOD_BUILD_CUDA_CC_LIST:-}
  if [ -z "$cc_list" ]; then
    cc_list=$("$py" -c 'import torch; print("".join(map(str, torch.cuda.get_device_capability(0))) if torch.cuda.is_available() else "")' 2>/dev/null || true)
  fi
  # CUDA_HOME too: Horovod's FindPytorch asks torch.utils.cpp_extension, which reads it.
  # NVTX ranges are profiling only, and newer CUDA toolkits may lack the nvToolsExt library.
  gpu_env=(
    HOROVOD_GPU_OPERATIONS=NCCL HOROVOD_CUDA_HOME="$cuda_home" CUDA_HOME="$cuda_home"
    HOROVOD_NCCL_LINK=SHARED HOROVOD_NCCL_INCLUDE="$nccl_inc" HOROVOD_NCCL_LIB="$tmp/nccl/lib"
    HOROVOD_WITHOUT_NVTX=1
  )
  [ -z "$cc_list" ] || gpu_env+=(HOROVOD_BUILD_CUDA_CC_LIST="$cc_list")
  what="PyTorch + Gloo + NCCL (CUDA $cuda_home, NCCL $nccl_inc, kernels for ${cc_list:-every arch})"
else
  gpu_env=(-u HOROVOD_GPU_OPERATIONS)
  what="PyTorch + Gloo, CPU only ($why_cpu)"
fi

src=${HOROVOD_SDIST:-horovod==$version}
jobs=${HOROVOD_JOBS:-$(($(nproc) < 2 ? 1 : 2))}
echo "horovod: building $version from source with $what (make -j$jobs; a CPU build takes 7-9 minutes on 2 cores)"
start=$(date +%s)
# --no-build-isolation: compile against the torch of this Python, not a fresh copy from PyPI.
# --no-deps: keeps the [spark]/petastorm pins out; deps were installed above.
# --no-cache-dir: a wheel cached from another torch build would not load against this one.
# --force-reinstall: rebuild an installed Horovod that no longer imports (e.g. torch changed)
#   or lacks NCCL.
env "${gpu_env[@]}" \
  CXX="$tmp/cxx" \
  MAKEFLAGS="-j$jobs" \
  HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
  HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
  HOROVOD_CPU_OPERATIONS=GLOO \
  nice -n "${HOROVOD_NICE:-5}" "$py" -m pip install -q --no-build-isolation --no-deps \
  --no-cache-dir --force-reinstall "$src"

SHIKONG_HOROVOD_EXPECT_NCCL=$gpu "$py" - <<'EOF'
import os

import horovod
import horovod.torch as hvd  # the extension must load against this torch
from horovod.common.util import gloo_built

assert gloo_built(), "Horovod was built without Gloo"
if os.environ["SHIKONG_HOROVOD_EXPECT_NCCL"] == "1":
    assert hvd.nccl_built(), "Horovod was built without NCCL"
ops = "PyTorch + Gloo" + (" + NCCL" if hvd.nccl_built() else "")
print(f"horovod: {horovod.__version__} installed with {ops}")
EOF
echo "horovod: build took $(($(date +%s) - start)) s"
