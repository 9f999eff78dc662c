#!/usr/bin/env bash
# Fetch the JVM jars shikong needs (Sedona, GeoTools wrapper, Delta and its runtime
# dependencies) into the project-local, git-ignored .jars/lib, once.
#
# Jars whose artifact pyspark already ships (Hadoop client, Jackson, Parquet, log4j, ...)
# are dropped: Spark's copies win on a parent-first classpath anyway, and two versions
# of one library side by side is the classic source of NoSuchMethodError.
# The result is verified against scripts/jars/jars.sha256 (regenerate with --pin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.jars/lib"
repo="$root/.jars/m2"
manifest="$root/scripts/jars/jars.sha256"
python="${PYTHON:-$root/.venv/bin/python}"

verify() {
  [ -d "$dest" ] || return 1
  (cd "$dest" && sha256sum --quiet -c "$manifest") >/dev/null 2>&1 || return 1
  # No extra jars beyond the manifest.
  [ "$(ls "$dest"/*.jar | wc -l)" -eq "$(grep -c '\.jar$' "$manifest")" ]
}

if [ "${1:-}" != "--pin" ] && [ -f "$manifest" ] && verify; then
  echo "jars: up to date in $dest"
  exit 0
fi

command -v mvn >/dev/null || { echo "jars: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest" "$repo"
mvn -B -q -f "$root/scripts/jars/pom.xml" -Dmaven.repo.local="$repo" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest"

spark_jars=$("$python" -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
# A glob, not `ls | grep -q`: under pipefail, grep -q exiting at its first match can kill
# ls with SIGPIPE, and the failed pipeline then kept a jar Spark already ships (seen once).
shopt -s nullglob
for jar in "$dest"/*.jar; do
  artifact=$(basename "$jar" .jar | sed -E 's/-[0-9][0-9.]*(-[0-9]+)?$//')
  shipped=("$spark_jars/$artifact"-[0-9]*.jar)
  if [ ${#shipped[@]} -gt 0 ]; then
    rm -f "$jar"
  fi
done
shopt -u nullglob

if [ "${1:-}" = "--pin" ]; then
  (cd "$dest" && sha256sum *.jar) > "$manifest"
  echo "jars: pinned $(wc -l < "$manifest") jars in $manifest"
fi
if ! verify; then
  echo "jars: checksum verification against $manifest failed" >&2
  exit 1
fi
echo "jars: fetched $(ls "$dest"/*.jar | wc -l) jars into $dest"
