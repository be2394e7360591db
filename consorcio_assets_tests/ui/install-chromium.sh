#!/usr/bin/env bash
# The browser test drives Debian's Chromium through Playwright (the system browser: Playwright's own download is
# not reachable from here). Installs it with apt-get when missing; does nothing when it is on the PATH.
exec bash "$(dirname "$0")/../apt-install.sh" chromium chromium "the browser test needs Chromium"
