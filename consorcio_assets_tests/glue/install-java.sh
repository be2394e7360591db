#!/usr/bin/env bash
# The Spark tests (pytest -m spark) run the Glue job's Spark path with pyspark in local[2], which needs a Java
# runtime (Glue 5.0 runs Java 17). Installs Debian's openjdk-17-jre-headless when `java` is missing.
exec bash "$(dirname "$0")/../apt-install.sh" java openjdk-17-jre-headless "the Spark tests need Java 17"
