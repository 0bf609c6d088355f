#!/usr/bin/env bash
# Real server faults (tests/conformance/server-faults.mjs) on both storage configurations:
# SQLite + local files, and PostgreSQL + S3 (Debian's postgres and moto from target/venv).
# kill -9 mid-upload beside committed assets, a client gone mid-body, a chunked body over the
# limit; objects are counted in the store itself. Loopback only; everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
WORK=$(mktemp -d)
MOTO_PID=
trap '[ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cargo build -q -p opfs-media-server

printf '\n--- server faults: sqlite+local\n'
FAULTS_DATABASE_URL="sqlite://$WORK/db.sqlite?mode=rwc" FAULTS_STORAGE_URL="file://$WORK/objects" \
  node_tests node tests/conformance/server-faults.mjs

printf '\n--- server faults: postgresql+s3\n'
MOTO_PID=$(start_pg_moto opfs_faults 18719 opfs-faults "$WORK")
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:18719
FAULTS_DATABASE_URL=postgres://opfs:opfs@127.0.0.1:5432/opfs_faults FAULTS_STORAGE_URL=s3://opfs-faults/media \
  FAULTS_S3_ENDPOINT=http://127.0.0.1:18719 node_tests node tests/conformance/server-faults.mjs

# Two instances, one database and one bucket, behind a round-robin proxy (as behind a load
# balancer): 50 clients upload, list, download every byte and read their changes feeds in
# small pages whose requests alternate between the instances.
printf '\n--- two instances on postgresql+s3 behind a round-robin proxy: 50 clients\n'
su postgres -c "psql -q -c \"DROP DATABASE IF EXISTS opfs_two\"" >&2
su postgres -c "psql -q -c \"CREATE DATABASE opfs_two OWNER opfs\"" >&2
curl -fsS -X PUT "http://127.0.0.1:18719/opfs-two" >/dev/null
INSTANCES=()
ADMIN=faults-admin-secret-0123456789
for port in 18721 18722; do
  target/debug/opfs-media-server --bind "127.0.0.1:$port" --database-url postgres://opfs:opfs@127.0.0.1:5432/opfs_two \
    --storage-url s3://opfs-two/media --admin-secret "$ADMIN" >"$WORK/instance-$port.log" 2>&1 &
  INSTANCES+=("$!")
done
trap '[ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null; kill "${INSTANCES[@]}" "${LB_PID:-}" 2>/dev/null; rm -rf "$WORK"' EXIT
for port in 18721 18722; do
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/api/media/capabilities" >/dev/null 2>&1 && break; sleep 0.1; done
done
node tests/wire-proxy.mjs --upstream http://127.0.0.1:18721 --upstream http://127.0.0.1:18722 --port 18723 >"$WORK/lb.log" 2>&1 &
LB_PID=$!
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18723/api/media/capabilities >/dev/null 2>&1 && break; sleep 0.1; done
node tests/conformance/load.mjs --base-url http://127.0.0.1:18723 --clients 50 --files 10 | tail -n 3

# The spaces checks through the same proxy: consecutive requests land on different instances,
# so a membership changed through one instance must hold on the other from the next request
# (a removed member refused on every endpoint, a session opened on one refused on the other).
printf '\n--- spaces across the two instances\n'
node_tests node --test-name-pattern=spaces tests/conformance/suite.mjs --base-url http://127.0.0.1:18723 \
  --token dev:alice --token2 dev:bob --admin-secret "$ADMIN"
