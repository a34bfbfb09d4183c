#!/usr/bin/env bash
# Set up .venv (package + test extras) and run the test suite. Extra arguments go to pytest.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k delta   # a subset
source "$(dirname "$0")/_env.sh" test
# The report's browser test drives Debian's chromium; as root with apt-get it is installed here,
# otherwise that one test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium for the report's browser test (first time only)"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >.venv/apt-chromium.log 2>&1; then
      echo "   could not install chromium (see .venv/apt-chromium.log): that test will be skipped"
    fi
  else
    echo "== chromium not found: the report's browser test will be skipped (apt-get install chromium)"
  fi
fi
echo "== running tests"
exec .venv/bin/python -m pytest "$@"
