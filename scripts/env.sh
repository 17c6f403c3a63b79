# Sourced by the scripts: one build profile, ccache for RocksDB's C++.
export PATH="$HOME/.cargo/bin:$PATH"
if command -v ccache >/dev/null 2>&1; then
  export CC="ccache gcc" CXX="ccache g++"
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
