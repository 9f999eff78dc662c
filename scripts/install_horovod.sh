#!/usr/bin/env bash
# Build Horovod 0.28.1 (PyTorch + Gloo, no MPI/TensorFlow/MXNet) from source into .venv.
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
# Idempotent: exits at once when .venv already imports horovod.torch, so the build is
# cached in .venv (cache .venv in CI). A build takes about 7-9 minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=.venv/bin/python
version=0.28.1

[ -x "$py" ] || { echo "horovod: $py not found; run scripts/setup.sh first" >&2; exit 1; }
if "$py" -c "import horovod.torch" >/dev/null 2>&1; then
  echo "horovod: already installed ($("$py" -c 'import horovod; print(horovod.__version__)'))"
  exit 0
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
# Plain install: packages already in .venv are left at their versions, never downgraded.
"$py" -m pip install -q cloudpickle psutil pyyaml packaging 'cffi>=1.4.0'

jobs=$(( $(nproc) < 2 ? 1 : 2 ))
echo "horovod: building $version from source with PyTorch + Gloo (make -j$jobs; about 7-9 minutes on 2 cores)"
start=$(date +%s)
# --no-build-isolation: compile against the torch in .venv, not a fresh copy from PyPI.
# --no-deps: keeps the [spark]/petastorm pins out; deps were installed above.
# --no-cache-dir: a wheel cached from another torch build would not load against this one.
# --force-reinstall: rebuild an installed Horovod that no longer imports (e.g. torch changed).
CXX="$tmp/cxx" \
  MAKEFLAGS="-j$jobs" \
  HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 \
  HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
  HOROVOD_CPU_OPERATIONS=gloo \
  nice -n "${HOROVOD_NICE:-5}" "$py" -m pip install -q --no-build-isolation --no-deps \
  --no-cache-dir --force-reinstall "horovod==$version"

"$py" - <<'EOF'
import horovod
import horovod.torch  # noqa: F401 - the extension must load against this torch
from horovod.common.util import gloo_built

assert gloo_built(), "Horovod was built without Gloo"
print(f"horovod: {horovod.__version__} installed with PyTorch + Gloo")
EOF
echo "horovod: build took $(( $(date +%s) - start )) s"
