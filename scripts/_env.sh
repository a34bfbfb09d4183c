# Shared set-up for scripts/run_pipeline.sh and scripts/test.sh (sourced, not run).
# Creates .venv with Python 3.11+ and installs the package; checks Java first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v java >/dev/null 2>&1 && [ ! -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; then
  echo "Java was not found: Spark needs Java 17 or 21 (e.g. 'apt-get install openjdk-17-jre-headless', or set JAVA_HOME)." >&2
  exit 1
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "Python 3.11 or newer was not found (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

extras="${1:-}"
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "== installing customer-analytics${extras:+ [$extras]} into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
# MLlib looks for the system's BLAS first; without one it prints a loader line
# ("dlopen(libblas.so.3) failed") and uses its Java code, which gives the same results.
if ! ldconfig -p 2>/dev/null | grep -q 'libblas\.so\.3'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's libblas3 for MLlib (first time only)"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libblas3) \
      >.venv/apt-blas.log 2>&1; then
      echo "   could not install libblas3 (see .venv/apt-blas.log): MLlib uses its Java BLAS"
    fi
  else
    echo "== libblas.so.3 not found: MLlib uses its Java BLAS (apt-get install libblas3 for the system's)"
  fi
fi
jars_stamp=".venv/.jars-$(.venv/bin/python -m customer_analytics.runtime.jars show | tr ':\n' '_-')"
if [ ! -f "$jars_stamp" ]; then
  echo "== caching the Delta Lake JARs from Maven Central (first time only)"
  if .venv/bin/python -m customer_analytics.runtime.jars fetch; then touch "$jars_stamp"; fi
fi
if [ "${CUSTOMER_ANALYTICS_CLASS_ARCHIVE:-}" != "off" ] &&
  ! .venv/bin/python -m customer_analytics.tools.class_archive show | grep -q "(present)$"; then
  echo "== making the JVM class archive, so that every local job starts faster (first time only, about a minute)"
  .venv/bin/python -m customer_analytics.tools.class_archive create || true
fi
