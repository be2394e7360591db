#!/usr/bin/env bash
# Installs the pinned checkov (infra/checkov-requirements.txt) into its own virtualenv, .venv/tools/checkov:
# checkov pins boto3, packaging and networkx to versions the project cannot use, and its bc-python-hcl2 installs
# the same `hcl2` module as the python-hcl2 the infra tests parse with. Does nothing when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
ENV=.venv/tools/checkov
STAMP="$ENV/.requirements"
if [ -x "$ENV/bin/checkov" ] && cmp -s infra/checkov-requirements.txt "$STAMP"; then
  exit 0
fi
"$PYTHON" -m venv --clear "$ENV"
"$ENV/bin/python" -m pip install --quiet --disable-pip-version-check -r infra/checkov-requirements.txt
cp infra/checkov-requirements.txt "$STAMP"
