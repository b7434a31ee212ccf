#!/usr/bin/env bash
# Install the Debian packages the test suite needs (a real registry, an independent client, and a
# headless browser with its WebDriver) when they are missing. Says clearly what to do where it
# cannot install them itself.
set -euo pipefail
# Extra programs named as arguments (each a Debian package of the same name) are ensured too:
# `make bench` asks for wrk, its load generator.
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)              # the dashboard's browser tests
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
for program in "$@"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "boda: installing Debian packages: ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "boda: apt-get not found; install ${missing[*]} yourself (Debian/Ubuntu packages)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "boda: not root and no sudo; run: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
