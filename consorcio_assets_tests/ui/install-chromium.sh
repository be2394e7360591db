#!/usr/bin/env bash
# The browser test drives Debian's Chromium through Playwright (the system browser: Playwright's own download is
# not reachable from here). Installs it with apt-get when missing; does nothing when it is on the PATH.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "the browser test needs Chromium: run 'sudo apt-get install chromium' (Debian) and 'make test' again" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
