#!/usr/bin/env bash
# Sets up what is missing, then runs every check and test of the project.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if [ -x scripts/setup.sh ]; then
  step "setup"
  scripts/setup.sh
else
  rustup target add wasm32-unknown-unknown >/dev/null
fi

step "format"
cargo fmt --all -- --check

step "clippy (native and wasm32)"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --target wasm32-unknown-unknown -- -D warnings

step "API docs (no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet

step "core builds for wasm32"
cargo build --lib --locked --target wasm32-unknown-unknown

step "PostgreSQL test cluster"
eval "$(scripts/pg-test-cluster.sh start)"
trap 'scripts/pg-test-cluster.sh stop' EXIT

step "Rust tests"
cargo test --locked

step "wasm glue tests (Node)"
npm run test:wasm

step "npm package tests (Node and Chromium)"
npm run test:node

step "browser tests (the page in Debian's Chromium against a real snappack serve)"
npm run test:browser
