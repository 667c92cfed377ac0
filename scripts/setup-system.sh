#!/usr/bin/env bash
# System packages the test suite uses, from Debian's archive (idempotent; skipped when present).
#  - libsecret-1-dev: headers so the optional keytar dependency can build from source.
#  - gnome-keyring, dbus-x11: a real Secret Service for the keychain test (run inside dbus-run-session).
set -euo pipefail
need=()
dpkg -s libsecret-1-dev >/dev/null 2>&1 || need+=(libsecret-1-dev)
dpkg -s gnome-keyring >/dev/null 2>&1 || need+=(gnome-keyring)
dpkg -s dbus-x11 >/dev/null 2>&1 || need+=(dbus-x11)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || echo "setup-system: could not install ${need[*]}; keychain tests will use the file store only" >&2
  else
    echo "setup-system: missing ${need[*]} (not root); keychain tests will use the file store only" >&2
  fi
fi
command -v aws >/dev/null || { echo "setup-system: the AWS CLI (aws) is required" >&2; exit 1; }
command -v moto_server >/dev/null || { echo "setup-system: moto_server is required" >&2; exit 1; }
