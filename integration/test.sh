#!/usr/bin/env bash
# THE test command: prepares the machine (integration/setup.sh: packages, tracefs, dockerd,
# fixture images), then runs the Rust tests, clippy and rustfmt. Run as root from anywhere.
# The environment (CI=true etc.) is passed through to cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n=== %s\n' "$*" >&2; }

step "setup (integration/setup.sh)"
t0=$SECONDS
"$ROOT/integration/setup.sh"
echo "setup took $((SECONDS - t0)) s" >&2

command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup) and put ~/.cargo/bin on PATH" >&2; exit 1; }
cargo --version >&2
# a rustup "minimal" profile lacks clippy and rustfmt
if ! cargo clippy --version >/dev/null 2>&1 || ! cargo fmt --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || { echo "cargo clippy / cargo fmt missing and no rustup to add them" >&2; exit 1; }
    rustup component add clippy rustfmt
fi

step "cargo test --workspace --no-fail-fast"
cargo test --workspace --no-fail-fast

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo fmt --check"
cargo fmt --check

step "all passed in $((SECONDS - t0)) s"
