#!/usr/bin/env bash
# Instructions per declaration, counted by valgrind's callgrind: a figure that does not move with
# the machine's load, unlike the wall-clock bench (benches/redbutton_bench.rs). It runs the given
# binary twice on a fresh SQLite database, once declaring nothing and once declaring N incidents
# through the real form, and prints the difference divided by N.
#
#   cargo build --release && bash benches/declare_instructions.sh target/release/redbutton 200
#
# Needs valgrind and python3. Extra TOML for the config file can be passed in EXTRA_CONFIG.
set -euo pipefail

BIN=$(realpath "${1:?usage: declare_instructions.sh BINARY [N]}")
N=${2:-200}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# One run: prints the total instruction count of the server process.
run() {
    local declares=$1 dir port pid
    dir=$(mktemp -d)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf '[[services]]\nid = "checkout"\nname = "Checkout"\n%s\n' "${EXTRA_CONFIG:-}" > "$dir/config.toml"
    (cd "$dir" && exec valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$BIN" serve --listen "127.0.0.1:$port" --config "$dir/config.toml" >"$dir/server.log" 2>&1) &
    pid=$!
    python3 "$HERE/declare_instructions.py" "http://127.0.0.1:$port" "$declares" >&2
    kill -INT "$pid"
    wait "$pid" || true
    sed -n 's/^summary: //p; s/^totals: //p' "$dir/callgrind.out" | head -n 1
    rm -rf "$dir"
}

base=$(run 0)
loaded=$(run "$N")
echo "start and stop, no declarations: $base instructions"
echo "with $N declarations:            $loaded instructions"
echo "per declaration:                 $(( (loaded - base) / N )) instructions"
