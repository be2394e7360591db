#!/usr/bin/env bash
# `consorcio docs` renders docs/images/ with Graphviz's dot (the `diagrams` package draws through it). Installs
# Debian's graphviz with apt-get when dot is missing; does nothing when it is on the PATH.
set -euo pipefail
command -v dot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "the docs' images need Graphviz: run 'sudo apt-get install graphviz' (Debian) and try again" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq graphviz >/dev/null
