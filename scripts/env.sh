# Sourced by the scripts: one build profile; ccache for RocksDB's C++ through
# Debian's compiler links (PATH, not CC/CXX, so cargo's fingerprints do not
# depend on whether ccache is there).
export PATH="$HOME/.cargo/bin:$PATH"
if [ -d /usr/lib/ccache ]; then
  export PATH="/usr/lib/ccache:$PATH"
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
fi
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
