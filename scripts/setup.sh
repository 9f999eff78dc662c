#!/usr/bin/env bash
# One-time (idempotent) set-up: .venv with the pinned packages, then the JVM jars.
# Re-running skips what is done: pip runs again only when pyproject.toml changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python_bin="${PYTHON:-python3.11}"
stamp=.venv/.setup-stamp

command -v java >/dev/null || { echo "setup: Java 17 is required (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v "$python_bin" >/dev/null || { echo "setup: $python_bin not found (Python 3.11 is required)" >&2; exit 1; }

want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing shikong and its pinned dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
else
  echo "setup: .venv up to date"
fi
PYTHON="$root/.venv/bin/python" scripts/fetch_jars.sh
# The report's browser test drives Debian's headless Chromium (tests/test_report_browser.py).
if ! command -v chromedriver >/dev/null || ! { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
    echo "setup: installing Debian's chromium and chromium-driver (the report's browser test)"
    $sudo apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        chromium chromium-driver >/dev/null \
      || echo "setup: could not install chromium; the browser test will fail naming it" >&2
  else
    echo "setup: chromium + chromium-driver are missing (apt-get install chromium chromium-driver);" \
      "the report's browser test will fail until they are installed" >&2
  fi
fi
if [ -x scripts/install_horovod.sh ] && [ "${SHIKONG_SKIP_HOROVOD:-0}" != "1" ]; then
  scripts/install_horovod.sh \
    || echo "setup: Horovod build failed (see above); the Horovod tests will be skipped" \
      "and backend=horovod is unavailable; retry with scripts/install_horovod.sh" >&2
fi
