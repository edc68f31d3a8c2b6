#!/usr/bin/env bash
# Sets up what is missing, builds snappack, writes a sample snapshot and validates it.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x scripts/setup.sh ] && scripts/setup.sh
cargo build --release --locked
mkdir -p data
sample=data/sample-snapshot.zip
if ./target/release/snappack gen --help >/dev/null 2>&1; then
  ./target/release/snappack gen "$sample" --tables 4 --documents 20000 --components 1 --storage-files 5
  ./target/release/snappack validate "$sample"
else
  ./target/release/snappack validate ../shared/data/convex-real/cron-jobs-export.zip
fi
