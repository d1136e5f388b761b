#!/bin/sh
# Creates (or upgrades) Temporal's own databases on the shared PostgreSQL.
set -eu
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  temporal-sql-tool --plugin postgres12 --ep postgres -u "$POSTGRES_USER" -p 5432 --db "$db" create || true
  temporal-sql-tool --plugin postgres12 --ep postgres -u "$POSTGRES_USER" -p 5432 --db "$db" setup-schema -v 0.0 || true
  temporal-sql-tool --plugin postgres12 --ep postgres -u "$POSTGRES_USER" -p 5432 --db "$db" \
    update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
