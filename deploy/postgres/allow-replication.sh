#!/bin/sh
# Run once by the postgres image when it initialises its data directory: let the replica
# profile's standby (docker-compose.yml, postgres-replica) stream from this server.
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
