#!/usr/bin/env bash
# `apt-install.sh COMMAND PACKAGE WHY`: a Debian package a test suite needs, installed with apt-get when COMMAND is
# not on the PATH (as root, as `make test` runs in CI); nothing when it is. Used for Chromium (the browser test)
# and Java (the Spark tests).
set -euo pipefail
command_name="$1" package="$2" why="$3"
command -v "$command_name" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "$why: run 'sudo apt-get install $package' (Debian) and 'make test' again" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "$package" >/dev/null
