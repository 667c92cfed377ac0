#!/usr/bin/env bash
# System packages the test suite uses, from Debian's archive (idempotent; skipped when present).
#  - libsecret-1-dev: headers so the optional keytar dependency can build from source.
#  - gnome-keyring, dbus-x11: a real Secret Service for the keychain test (run inside dbus-run-session).
#  - awscli: Debian's package is a real AWS CLI v2 (2.9, at /usr/bin/aws; v1 stays first on PATH). The
#    end-to-end tests run on both (test/helpers/aws.ts testClis); it is required, not optional.
#  - bubblewrap: the broker confines the aws it runs for callers with bwrap (src/runner/isolation.ts); its tests
#    (test/runner/isolation.test.ts) must run in CI.
#  - chromium: the real browser the web console's tests drive (test/console/, through playwright-core).
#  - postgresql: the store tests run against a real PostgreSQL server as well as SQLite (test/helpers/postgres.ts
#    starts one per test file from /usr/lib/postgresql/*/bin with a throwaway data directory, as the `postgres` user
#    when run as root: the server refuses root). The package's own cluster is not used.
set -euo pipefail
need=()
dpkg -s libsecret-1-dev >/dev/null 2>&1 || need+=(libsecret-1-dev)
dpkg -s gnome-keyring >/dev/null 2>&1 || need+=(gnome-keyring)
dpkg -s dbus-x11 >/dev/null 2>&1 || need+=(dbus-x11)
dpkg -s awscli >/dev/null 2>&1 || need+=(awscli)
dpkg -s bubblewrap >/dev/null 2>&1 || need+=(bubblewrap)
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s postgresql >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || echo "setup-system: could not install ${need[*]}; keychain tests will use the file store only" >&2
  else
    echo "setup-system: missing ${need[*]} (not root); keychain tests will use the file store only" >&2
  fi
fi
command -v aws >/dev/null || { echo "setup-system: the AWS CLI (aws) is required" >&2; exit 1; }
# The v2 the tests use (GUARD_AWS_TEST_V2_BIN overrides; GUARD_AWS_TEST_CLIS=v1 runs without it).
v2="${GUARD_AWS_TEST_V2_BIN:-/usr/bin/aws}"
case ",${GUARD_AWS_TEST_CLIS:-v1,v2}," in
  *,v2,*) "$v2" --version 2>/dev/null | grep -q '^aws-cli/2\.' \
    || { echo "setup-system: an AWS CLI v2 is required at $v2 (apt-get install awscli, or set GUARD_AWS_TEST_V2_BIN)" >&2; exit 1; } ;;
esac
command -v moto_server >/dev/null || { echo "setup-system: moto_server is required" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "setup-system: bubblewrap (bwrap) is required for the broker's confined runs (apt-get install bubblewrap)" >&2; exit 1; }
# The store tests' PostgreSQL (GUARD_AWS_TEST_PG_BIN overrides the directory of initdb and postgres).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -x "${GUARD_AWS_TEST_PG_BIN:-/nonexistent}/initdb" ] \
  || { echo "setup-system: PostgreSQL is required for the store tests (apt-get install postgresql, or set GUARD_AWS_TEST_PG_BIN)" >&2; exit 1; }
if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
  echo "setup-system: running as root, the store tests start PostgreSQL as the user postgres, which does not exist" >&2; exit 1
fi
# The console's browser tests (GUARD_AWS_TEST_CHROMIUM overrides the path).
[ -x "${GUARD_AWS_TEST_CHROMIUM:-/usr/bin/chromium}" ] \
  || { echo "setup-system: chromium is required for test/console (apt-get install chromium, or set GUARD_AWS_TEST_CHROMIUM)" >&2; exit 1; }
