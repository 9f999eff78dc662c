#!/usr/bin/env bash
# `make image-test`: run the built image's own software inside its filesystem.
#
# Containers cannot be started on this machine (the sandbox's resource limits block the
# OCI runtime), so the test does what a container would, without the isolation: a
# throw-away container's writable root (`podman create` + `podman mount`) with /proc, /sys
# and /dev bound in, entered with chroot as the image's user (uid 185) and its environment.
# Nothing from the checkout runs but the tests' smoke subset (tests/ copied in, plus pytest
# installed into a scratch folder); Spark binds to loopback.
#
# Checks, each failing the target: the entry point's one-line errors for a Kubernetes pod
# without its settings; no compiler or pip cache in the image; `shikong run --config small
# --scale small` (Spark local mode, ./lakehouse) then `shikong tables`; the smoke
# tests (pytest -m smoke).
. "$(dirname "$0")/image_common.sh"
podman image exists "$image" || { echo "image-test: no image $image; run make image first" >&2; exit 1; }

ctr=$(podman create --name "shikong-image-test-$$" "$image")
mnt=$(podman mount "$ctr")
cleanup() {
  # Whatever still runs inside the root (a Spark JVM after a failure) goes first.
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$mnt" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
  done
  for m in dev sys proc; do umount -l "$mnt/$m" 2>/dev/null || true; done
  podman umount "$ctr" >/dev/null 2>&1 || true
  podman rm -f "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mount -t proc proc "$mnt/proc"
mount --rbind /sys "$mnt/sys"
# Recursive: /dev/shm and /dev/pts too (Python's multiprocessing and joblib need /dev/shm).
mount --rbind /dev "$mnt/dev"
grep -q localhost "$mnt/etc/hosts" 2>/dev/null || echo "127.0.0.1 localhost" >>"$mnt/etc/hosts"

# The image's environment, as a container would get it, plus loopback-only Spark.
mapfile -t image_env < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" | grep .)
image_env+=(HOME=/work SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_HOSTNAME=localhost)
inside() {  # inside CMD...: run CMD in the image's root, as its user, in /work
  chroot --userspec=185:0 "$mnt" /usr/bin/env -i "${image_env[@]}" \
    /bin/bash -c 'cd /work && exec "$@"' inside "$@"
}
step() { echo "image-test: $*"; }

step "entry point: a Kubernetes pod without its settings stops in one line"
for mode in driver executor; do
  if out=$(inside /opt/shikong/bin/entrypoint.sh "$mode" 2>&1); then
    echo "image-test: entrypoint $mode succeeded without its settings" >&2; exit 1
  fi
  echo "  $mode: $out"
  [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || { echo "image-test: not one line" >&2; exit 1; }
done
inside /opt/shikong/bin/entrypoint.sh shikong --help >/dev/null

step "lean: no compiler, no pip cache, runs as uid 185"
for tool in gcc cc g++ make readelf; do
  if inside bash -c "command -v $tool" >/dev/null; then echo "image-test: $tool in the image" >&2; exit 1; fi
done
[ ! -d "$mnt/root/.cache/pip" ] || { echo "image-test: pip cache in the image" >&2; exit 1; }
[ "$(inside id -u)" = 185 ]

# The small profile (conf/small.yaml, read from the wheel): the embedded default's
# windows are sized for the default world and leave the small one no training examples.
# IMAGE_TEST_RUN_ARGS= (empty) runs the embedded default itself (the default world).
read -r -a run_args <<<"${IMAGE_TEST_RUN_ARGS---config small --scale small}"
step "shikong run ${run_args[*]} (local mode, ./lakehouse)"
start=$(date +%s)
inside shikong run "${run_args[@]}"
echo "image-test: shikong run took $(( $(date +%s) - start )) s"
inside shikong tables

step "smoke tests (pytest -m smoke) with the image's Python and shikong"
rm -rf build/image/smoke && mkdir -p build/image/smoke
"$py" -m pip download -q --only-binary=:all: -d build/image/smoke/wheels \
  "pytest==$("$py" -c 'import pytest; print(pytest.__version__)')"
smoke="$mnt/tmp/smoke"
mkdir -p "$smoke"
cp -r tests conf pyproject.toml build/image/smoke/wheels "$smoke/"
rm -rf "$smoke/tests/__pycache__"
chown -R 185:0 "$smoke"
# Only the modules marked smoke are collected: the others import test-only libraries
# (geopandas, h3, moto...) that the image leaves out.
mapfile -t smoke_tests < <(grep -l '^pytestmark = pytest.mark.smoke' tests/test_*.py)
[ "${#smoke_tests[@]}" -gt 0 ] || { echo "image-test: no smoke tests found" >&2; exit 1; }
inside bash -c 'cd /tmp/smoke && python -m pip install -q --no-index --find-links wheels \
  --target /tmp/smoke/site pytest \
  && PYTHONPATH=/tmp/smoke/site python -m pytest -m smoke -q -p no:cacheprovider "$@"' \
  smoke "${smoke_tests[@]}"
step "passed"
