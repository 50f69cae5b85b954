# SPDX-License-Identifier: MIT
# Shared by the shell tests (source it): a scratch directory $work, processes in pids[]
# killed at exit, and TAP output.
#   check DESCRIPTION COMMAND...   one test: ok when COMMAND succeeds; its output is shown
#                                  (last 30 lines, as TAP comments) only when it fails
#   skip DESCRIPTION REASON        one skipped test
#   tap_exit                       exit status: 1 if any check failed
work=$(mktemp -d)
pids=()
tap_cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap tap_cleanup EXIT

n=0 failed=0
check() {
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >>"$work/log" 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' "$work/log" | tail -n 30
		failed=$((failed + 1))
	fi
	: >"$work/log"
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
tap_exit() { exit $((failed > 0)); }
