#!/bin/bash
# Entry point of the shikong image.
#
# Spark on Kubernetes starts its pods from the image with a first argument of `driver` or
# `executor` and describes the rest in environment variables (set by Spark's Kubernetes
# backend); anything else is a command (`shikong run`, `spark-submit ...`, `bash`).
# Everything runs under tini, which reaps Spark's child processes and forwards signals.
set -euo pipefail

need() {  # need VAR...: stop in one line naming the first unset variable
  local var
  for var in "$@"; do
    if [ -z "${!var:-}" ]; then
      echo "shikong entrypoint: $var is not set (the Spark Kubernetes backend sets it for '$mode' pods)" >&2
      exit 2
    fi
  done
}

# A pod may run under an arbitrary uid (OpenShift): give it a passwd entry, which the JVM
# and Hadoop's user lookup expect.
if ! getent passwd "$(id -u)" >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  echo "$(id -u):x:$(id -u):$(id -g):spark:/work:/bin/false" >> /etc/passwd
fi

mode="${1:-}"
case "$mode" in
  driver)
    shift
    need SPARK_DRIVER_BIND_ADDRESS
    # Cluster-mode submission ends here: the driver pod runs the application in client
    # mode, bound to its pod IP.
    set -- "$SPARK_HOME/bin/spark-submit" --deploy-mode client \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" "$@"
    ;;
  executor)
    shift
    need SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
      SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP SPARK_EXECUTOR_POD_NAME
    # JVM options arrive as SPARK_JAVA_OPT_0, _1, ... in that order.
    java_opts=()
    while IFS= read -r index; do
      var="SPARK_JAVA_OPT_$index"
      java_opts+=("${!var}")
    done < <(compgen -v SPARK_JAVA_OPT_ | sed 's/^SPARK_JAVA_OPT_//' | sort -n)
    classpath="${SPARK_CONF_DIR:-$SPARK_HOME/conf}:$SPARK_HOME/jars/*"
    if [ -n "${SPARK_EXTRA_CLASSPATH:-}" ]; then
      classpath="$classpath:$SPARK_EXTRA_CLASSPATH"
    fi
    set -- java "${java_opts[@]}" \
      "-Xms$SPARK_EXECUTOR_MEMORY" "-Xmx$SPARK_EXECUTOR_MEMORY" -cp "$classpath" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "$SPARK_EXECUTOR_POD_NAME"
    ;;
  "")
    set -- shikong --help
    ;;
esac
exec tini -s -- "$@"
