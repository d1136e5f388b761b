#!/usr/bin/env sh
# Installs what the tests need (into .venv), lints, type-checks the journeys,
# their domain and activities, and runs the whole suite.
# Point CRM_TEST_POSTGRES_URL at a PostgreSQL server to run the store tests
# on PostgreSQL as well as SQLite; extra arguments go to pytest.
set -eu
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check --quiet .
.venv/bin/mypy workflows domain activities
exec .venv/bin/python -m pytest -rs "$@"
