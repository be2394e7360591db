#!/usr/bin/env bash
# The Spark tests (pytest -m spark) run the Glue job's Spark path with pyspark in local[2], which needs a Java
# runtime (Glue 5.0 runs Java 17). Installs Debian's openjdk-17-jre-headless with apt-get when `java` is missing;
# does nothing when it is on the PATH.
set -euo pipefail
command -v java >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "the Spark tests need Java 17: run 'sudo apt-get install openjdk-17-jre-headless' (Debian) and 'make test' again" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq openjdk-17-jre-headless >/dev/null
