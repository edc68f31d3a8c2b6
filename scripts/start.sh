#!/usr/bin/env bash
# Sets up what is missing, builds snappack and its web page, writes a sample
# snapshot to try, and starts the server (SQLite) with the page on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --locked
npm run build --silent

mkdir -p data
sample=data/sample-snapshot.zip
if [ ! -f "$sample" ]; then
  ./target/release/snappack gen "$sample" --tables 4 --documents 5000 --component billing --storage-files 3
fi

listen=${SNAPPACK_LISTEN:-127.0.0.1:8080}
if [ -n "${SNAPPACK_TOKEN:-}" ]; then
  token_note='The admin token is the one in $SNAPPACK_TOKEN; the page asks for it.'
else
  token_note='The admin token is printed below on first start and kept in data/token; the page asks for it.'
fi
cat <<INFO

snappack: open http://$listen/ and drop a snapshot (a sample is at $sample).
$token_note
Try the CLI too: ./target/release/snappack upload $sample --url http://$listen --token <token>

INFO
exec ./target/release/snappack serve --listen "$listen" --database data/snappack.db --data-dir data --www www
