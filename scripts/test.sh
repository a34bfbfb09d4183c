#!/usr/bin/env bash
# Set up .venv (package + test extras) and run the test suite. Extra arguments go to pytest.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k delta   # a subset
source "$(dirname "$0")/_env.sh" test
echo "== running tests"
exec .venv/bin/python -m pytest "$@"
