#!/usr/bin/env sh
# Installs what the product needs (into .venv) and starts it on its embedded
# defaults: a Temporal dev server with its Web UI, the SQLite CRM store, the worker.
#   ./run.sh            the product
#   ./run.sh --demo     the same, with staff and leads seeded and time sped up
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
echo "crm and temporal are in .venv/bin; to type them bare, in another terminal: export PATH=\"$PWD/.venv/bin:\$PATH\""
exec .venv/bin/crm up "$@"
