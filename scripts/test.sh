#!/usr/bin/env bash
# Run the whole test suite: `bash scripts/test.sh [extra cargo test args]`.
#
# The integration tests talk to a real SMTP server (tests/support/smtp_sink.py),
# which needs Python with aiosmtpd. This script keeps a private virtualenv for
# it in target/test-venv, tells the tests where it is via REDBUTTON_TEST_PYTHON,
# makes sure Chromium and chromedriver are there for the browser tests and that
# the test OpenID Connect provider (tests/oidc-provider, Node.js) has its
# packages, and then runs `cargo test --all-targets`.
#
# Database: SQLite by default. Set TEST_DATABASE_URL=postgres://user@host:port/db
# to run the same tests on PostgreSQL; each test creates its own database
# through that URL, so the role needs CREATEDB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV_DIR="$PWD/target/test-venv"
VENV_PYTHON="$VENV_DIR/bin/python"
# Pinned so every machine runs the tests against the same SMTP server code.
AIOSMTPD_REQUIREMENT="aiosmtpd==1.4.6"
# The API test (tests/api/api_v1.rs) runs schemathesis against the generated OpenAPI document.
SCHEMATHESIS_REQUIREMENT="schemathesis==4.32.5"

say() { printf '[test.sh] %s\n' "$*"; }
die() { printf '[test.sh] error: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust from https://rustup.rs"

# True when `python3 -m venv` can build a venv that has pip in it.
host_python_can_make_venvs() {
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}

venv_is_usable() {
    [ -x "$VENV_PYTHON" ] && "$VENV_PYTHON" -c 'import aiosmtpd' >/dev/null 2>&1
}

ensure_test_venv() {
    if venv_is_usable; then
        return
    fi

    command -v python3 >/dev/null 2>&1 || die "python3 not found; it is needed to run the test SMTP server"

    if ! host_python_can_make_venvs; then
        # Debian/Ubuntu ship the venv module (and ensurepip) separately.
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3-venv with apt-get"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        fi
        host_python_can_make_venvs || die "python3 cannot create virtualenvs.
  On Debian/Ubuntu run:  sudo apt-get install python3-venv
  then run this script again."
    fi

    # Build the venv; if the result still cannot import aiosmtpd (a venv half
    # made by an interrupted run, or left behind by a python3 upgrade), throw
    # it away and build it once more from scratch.
    for _ in 1 2; do
        if [ ! -x "$VENV_PYTHON" ] || ! "$VENV_PYTHON" -m pip --version >/dev/null 2>&1; then
            rm -rf "$VENV_DIR"
            say "creating Python virtualenv in target/test-venv"
            mkdir -p "$(dirname "$VENV_DIR")"
            python3 -m venv "$VENV_DIR"
        fi
        say "installing $AIOSMTPD_REQUIREMENT into target/test-venv"
        "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check --no-input "$AIOSMTPD_REQUIREMENT" || true
        if venv_is_usable; then
            return
        fi
        rm -rf "$VENV_DIR"
    done
    die "could not install $AIOSMTPD_REQUIREMENT into $VENV_DIR (is PyPI reachable?)"
}

# schemathesis is optional for the venv: if it cannot be installed the venv still serves the SMTP
# tests, and the schemathesis test says it was skipped (unless REDBUTTON_REQUIRE_SCHEMATHESIS=1).
ensure_schemathesis() {
    if "$VENV_PYTHON" -c 'import schemathesis' >/dev/null 2>&1; then
        return
    fi
    say "installing $SCHEMATHESIS_REQUIREMENT into target/test-venv"
    if ! "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check --no-input "$SCHEMATHESIS_REQUIREMENT"; then
        say "could not install $SCHEMATHESIS_REQUIREMENT; the schemathesis test will be skipped"
    fi
    venv_is_usable || die "installing schemathesis broke target/test-venv; delete it and run this script again"
}

# The browser tests (tests/api/browser.rs) need Chromium and chromedriver. As root on Debian or
# Ubuntu they are installed here; otherwise those two tests say they were skipped.
ensure_browser() {
    if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
        return
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing chromium and chromium-driver with apt-get (for the browser tests)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null ||
            say "could not install chromium; the browser tests will be skipped"
    else
        say "chromium/chromedriver not found: the browser tests will be skipped (sudo apt-get install chromium chromium-driver)"
    fi
}

# The OpenID Connect tests (tests/oidc_client.rs) run a real provider, tests/oidc-provider, on
# Node.js. Its packages come from the committed package-lock.json; without node and npm those
# tests say they were skipped.
ensure_oidc_provider() {
    local dir="tests/oidc-provider"
    if [ -d "$dir/node_modules/oidc-provider" ]; then
        return
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "node/npm not found: the OIDC provider tests will be skipped (sudo apt-get install nodejs npm)"
        return
    fi
    say "installing the test OIDC provider's packages (npm ci in $dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
        say "npm ci failed in $dir: the OIDC provider tests will be skipped"
}

ensure_test_venv
ensure_schemathesis
ensure_browser
ensure_oidc_provider
export REDBUTTON_TEST_PYTHON="$VENV_PYTHON"

if [ -n "${TEST_DATABASE_URL:-}" ]; then
    # Show where the tests go without printing a password, if the URL has one.
    shown_url=$(printf '%s' "$TEST_DATABASE_URL" | sed -E 's#^([a-z]+://[^:/@]+):[^/]*@#\1:***@#')
    say "database: PostgreSQL via TEST_DATABASE_URL=$shown_url"
else
    say "database: SQLite (set TEST_DATABASE_URL=postgres://... to test on PostgreSQL)"
fi

# Property tests (tests/properties.rs): a fixed number of generated cases keeps their time bounded
# (about 3 s at 20,000 per property on 2 cores).
export PROPTEST_CASES="${PROPTEST_CASES:-20000}"

exec cargo test --all-targets "$@"
