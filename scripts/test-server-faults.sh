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
  node_tests node --test tests/conformance/server-faults.mjs

printf '\n--- server faults: postgresql+s3\n'
MOTO_PID=$(start_pg_moto opfs_faults 18719 opfs-faults "$WORK")
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:18719
FAULTS_DATABASE_URL=postgres://opfs:opfs@127.0.0.1:5432/opfs_faults FAULTS_STORAGE_URL=s3://opfs-faults/media \
  FAULTS_S3_ENDPOINT=http://127.0.0.1:18719 node_tests node --test tests/conformance/server-faults.mjs
