#!/usr/bin/env bash
# Installs what building and testing snappack needs, and skips whatever is
# already there, so it is quick to run before every test run.
#
# Everything comes from package registries (crates.io, npm, Debian): nothing
# here downloads a prebuilt binary or a browser.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

# Rust target for the WebAssembly build.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must be exactly the wasm-bindgen version in Cargo.lock.
# (`--locked` is left out on purpose: the CLI's own lock file does not build here.)
wasm_bindgen_version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ] ||
   ! command -v wasm-bindgen-test-runner >/dev/null; then
  say "installing wasm-bindgen-cli $wasm_bindgen_version"
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

# npm dev dependencies, when missing or older than the lock file. They include
# wasm-opt (binaryen's npm build; Debian's binaryen is too old for the
# externref table wasm-bindgen emits).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund
fi

# Chromium for the browser tests, from Debian (playwright-core drives it; no
# browser is downloaded).
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
