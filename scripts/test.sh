#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, from a fresh Debian 12 machine: installs dependencies, builds, runs
# every test in a normal build, then the registry, device, transport and fuzz-corpus tests
# under AddressSanitizer+UBSan, and the registry, gpu-bridge and vhost-user tests under
# valgrind (the media decoding tests are too slow there). Prints "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh || exit 1

passed=0 failed=0 skipped=0
status=0

# count LOG: adds up the results of one meson test run (testlog.json, or testlog-SETUP.json).
count() {
	local line
	line=$(python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
	) || { failed=$((failed + 1)); return; }
	read -r p f s <<<"$line"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# run NAME DIR SETUP-ARGS -- TEST-ARGS
run() {
	local name=$1 dir=$2
	shift 2
	local setup=() args=()
	while (($#)) && [[ $1 != -- ]]; do setup+=("$1"); shift; done
	shift || true
	args=("$@")
	echo "== $name"
	if ! scripts/build.sh "$dir" "${setup[@]}"; then
		echo "$name: build failed" >&2
		failed=$((failed + 1)) status=1
		return
	fi
	# meson writes testlog.json, or testlog-SETUP.json for a --setup run.
	local log=$dir/meson-logs/testlog.json
	for ((i = 0; i < ${#args[@]}; i++)); do
		if [[ ${args[i]} == --setup ]]; then
			log=$dir/meson-logs/testlog-${args[i + 1]}.json
		fi
	done
	rm -f "$log"
	meson test -C "$dir" --print-errorlogs --num-processes 2 "${args[@]}" || status=1
	count "$log"
}

werror=()
if [[ ${CI:-} == true ]]; then
	werror=(--werror)
fi

run "default build" build "${werror[@]}" --
run "address,undefined sanitizers" build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	"${werror[@]}" -- --suite registry --suite fuzz --suite common --suite gpu-bridge \
	--suite media-device --suite vhost-user --suite guest
# Not the tests that load libavcodec (suite media-device): its libjxl pulls in libhwy, whose
# start-up code runs an instruction valgrind 3.19 does not know on some CPUs (SIGILL).
run "valgrind" build -- --setup valgrind --suite registry --suite common --suite gpu-bridge \
	--suite vhost-user --no-suite media-device

echo "$passed passed, $failed failed, $skipped skipped"
if ((failed > 0)); then
	status=1
fi
exit $status
