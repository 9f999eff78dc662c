# Sourced by scripts/image.sh and scripts/image_test.sh: the checkout, its Python and the
# image's tag (IMAGE overrides; default localhost/shikong:<version in pyproject.toml>).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
py=.venv/bin/python
version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')
image="${IMAGE:-localhost/shikong:$version}"
