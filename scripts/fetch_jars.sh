#!/usr/bin/env bash
# Fetch the JVM jars shikong needs into the project-local, git-ignored .jars/, once:
#   .jars/lib  Sedona, GeoTools wrapper, Delta and its runtime dependencies (always on the
#              session: spark.jars_dir), from scripts/jars/pom.xml;
#   .jars/s3a  hadoop-aws and the AWS SDK modules S3A uses, for an s3a:// lakehouse
#              (opt-in: spark.extra_jars_dirs), from scripts/jars/s3a/pom.xml.
#
# Jars whose artifact pyspark already ships (Hadoop client, Jackson, Parquet, log4j, netty,
# ...) are dropped: Spark's copies win on a parent-first classpath anyway, and two versions
# of one library side by side is the classic source of NoSuchMethodError.
# Each folder is verified against its manifest (scripts/jars/jars.sha256,
# scripts/jars/s3a/jars.sha256; regenerate both with --pin).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
repo="$root/.jars/m2"
python="${PYTHON:-$root/.venv/bin/python}"
pin=0
[ "${1:-}" = "--pin" ] && pin=1

verify() {  # verify DEST MANIFEST
  local dest=$1 manifest=$2
  [ -d "$dest" ] || return 1
  (cd "$dest" && sha256sum --quiet -c "$manifest") >/dev/null 2>&1 || return 1
  # No extra jars beyond the manifest.
  [ "$(ls "$dest"/*.jar | wc -l)" -eq "$(grep -c '\.jar$' "$manifest")" ]
}

fetch() {  # fetch DEST POM MANIFEST
  local dest=$1 pom=$2 manifest=$3
  if [ "$pin" = 0 ] && [ -f "$manifest" ] && verify "$dest" "$manifest"; then
    echo "jars: up to date in $dest"
    return 0
  fi
  command -v mvn >/dev/null || { echo "jars: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }
  rm -rf "$dest"
  mkdir -p "$dest" "$repo"
  mvn -B -q -f "$pom" -Dmaven.repo.local="$repo" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest"

  local spark_jars jar artifact
  spark_jars=$("$python" -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
  # A glob, not `ls | grep -q`: under pipefail, grep -q exiting at its first match can kill
  # ls with SIGPIPE, and the failed pipeline then kept a jar Spark already ships (seen once).
  shopt -s nullglob
  for jar in "$dest"/*.jar; do
    artifact=$(basename "$jar" .jar | sed -E 's/-[0-9][0-9.]*(\.Final)?(-[0-9]+)?$//')
    local shipped=("$spark_jars/$artifact"-[0-9]*.jar)
    if [ ${#shipped[@]} -gt 0 ]; then
      rm -f "$jar"
    fi
  done
  shopt -u nullglob

  if [ "$pin" = 1 ]; then
    (cd "$dest" && sha256sum *.jar) > "$manifest"
    echo "jars: pinned $(wc -l < "$manifest") jars in $manifest"
  fi
  if ! verify "$dest" "$manifest"; then
    echo "jars: checksum verification of $dest against $manifest failed" >&2
    exit 1
  fi
  echo "jars: fetched $(ls "$dest"/*.jar | wc -l) jars into $dest"
}

fetch "$root/.jars/lib" "$root/scripts/jars/pom.xml" "$root/scripts/jars/jars.sha256"
fetch "$root/.jars/s3a" "$root/scripts/jars/s3a/pom.xml" "$root/scripts/jars/s3a/jars.sha256"
