#!/bin/sh
# SPDX-License-Identifier: MIT
# The symbols libcrossbuf exports must be exactly the ones its version map lists, all
# under the map's version node.
set -eu
lib=$1
map=$2
exported=$(nm -D --defined-only "$lib" | awk '$3 !~ /^CROSSBUF_/ { print $3 }' | sort)
listed=$(sed -n 's/^[[:space:]]*\(crossbuf_[a-z0-9_]*\);$/\1/p' "$map" | sed 's/$/@@CROSSBUF_0.1/' | sort)
if [ "$exported" != "$listed" ]; then
	echo "exported symbols differ from $map:"
	diff -u /dev/fd/3 /dev/fd/4 3<<EOF3 4<<EOF4 || true
$listed
EOF3
$exported
EOF4
	exit 1
fi
echo "$(echo "$exported" | wc -l) symbols match the map"
