#!/usr/bin/env bash
# Run here (the build machine) before test/gpu/device_check.sh runs on the GPU machine: builds everything, packs
# node for that machine (.devnode, test/gpu/pack_node.sh) and stamps what was built (.devcheck/stamp.json:
# commit, whether the tree was dirty, the addon's sha256), so the device run can tell a stale addon from a fresh one.
# Prints the device tool's carry list and checks that what travels stays under 64 MiB.
#   --skip-build   stamp what is already built (after an npm run build of the same commit)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
[ "${1:-}" = "--skip-build" ] || npm run build
bash test/gpu/pack_node.sh
exclude=$(git rev-parse --git-path info/exclude)
grep -qxF '/.devcheck/' "$exclude" 2>/dev/null || echo '/.devcheck/' >> "$exclude"
mkdir -p .devcheck
addon=native/build/Release/cskv_native.node
dirty=$([ -n "$(git status --porcelain --untracked-files=no)" ] && echo true || echo false)
cat > .devcheck/stamp.json <<JSON
{"commit": "$(git rev-parse HEAD)", "dirty": $dirty, "builtAt": "$(date -u +%FT%TZ)", "addonSha256": "$(sha256sum "$addon" | cut -d' ' -f1)"}
JSON
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carried=$(du -cb .devnode out "$addon" .devcheck | tail -1 | cut -f1)
total=$((tracked + carried))
echo "stamp: $(cat .devcheck/stamp.json)"
echo "travels: $((total / 1048576)) MiB (tracked $((tracked / 1048576)) + carried $((carried / 1048576))); limit 64 MiB"
[ "$total" -lt $((64 * 1048576)) ] || { echo "too large to travel" >&2; exit 1; }
echo 'carry: [".devnode", "out", "native/build/Release/cskv_native.node", ".devcheck"]'
