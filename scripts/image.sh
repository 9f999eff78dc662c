#!/usr/bin/env bash
# `make image`: build shikong's container image with podman on this machine.
#
# No Docker daemon and no registry here, only Debian's packages: podman and debootstrap
# come from apt, the base is Debian bookworm debootstrapped into a local image
# (localhost/shikong-base:bookworm, built once), and `podman build --isolation chroot`
# builds docker/Dockerfile on it. Elsewhere `docker build -f docker/Dockerfile .` takes the
# public debian:bookworm-slim instead (after the same preparation of the context).
#
#   BASE_IMAGE=...   use this base instead of the local one
#   IMAGE=...        tag (default localhost/shikong:<version>)
. "$(dirname "$0")/image_common.sh"
local_base=localhost/shikong-base:bookworm
mkdir -p build/image

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "image: podman and debootstrap are needed (apt-get install podman debootstrap, as root)" >&2; exit 1; }
  echo "image: installing podman and debootstrap (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap >/dev/null
fi

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  base=$local_base
  if ! podman image exists "$base"; then
    echo "image: debootstrapping the Debian bookworm base (once)"
    rootfs=build/image/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >build/image/debootstrap.log
    # The sources Debian's own image has: updates and security besides the release.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
fi

echo "image: wheel and constraints"
rm -f dist/shikong-*.whl
"$py" -m pip wheel -q --no-deps --no-build-isolation -w dist . >/dev/null
# The exact versions the tests ran with; only plain pins (a locally built Horovod is not
# in the image: backend horovod needs MPI/Gloo builds the image leaves out).
"$py" -m pip freeze --exclude-editable | grep -E '^[A-Za-z0-9_.-]+==' | grep -v -i '^horovod==' \
  > build/image/constraints.txt

echo "image: building $image on $base"
start=$(date +%s)
secret=()
cert="${PIP_CERT:-${SSL_CERT_FILE:-}}"
if [ -n "$cert" ] && [ -f "$cert" ]; then
  secret=(--secret "id=pip_cert,src=$cert")  # a proxy's CA for pip, in no layer
fi
podman build --isolation chroot --build-arg "BASE_IMAGE=$base" "${secret[@]}" \
  -f docker/Dockerfile -t "$image" .
seconds=$(( $(date +%s) - start ))
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image: $image built in ${seconds} s, $(( size / 1024 / 1024 )) MiB"
printf '{"image": "%s", "base": "%s", "build_seconds": %d, "size_bytes": %d}\n' \
  "$image" "$base" "$seconds" "$size" > build/image/image.json
