#!/usr/bin/env bash
# Packs node and the packages the device commands load for the GPU machine, which has no Node.js: .devnode/ at the root of this checkout or worktree holds
# this machine's node binary, stripped of its symbol table (the dynamic symbols that addons link against stay) and
# xz -9 compressed (~22 MB: the checks call's carry has to stay under 64 MiB); test/gpu/prologue.sh, which every
# device command sources first, unpacks it there. .devnode/ is git-ignored locally. Repacks only when node's version changed.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" .devnode
grep -qxF '/.devnode/' "$exclude" 2>/dev/null || echo '/.devnode/' >> "$exclude"
packed="$(node --version) stripped xz-9"
if [ "$(cat .devnode/node.version 2>/dev/null)" != "$packed" ] || [ ! -f .devnode/node.xz ]; then
  tmp=.devnode/node.stripping
  cp "$(command -v node)" "$tmp"
  strip "$tmp"
  "$tmp" --version > /dev/null
  nice xz -T2 -9 -c "$tmp" > .devnode/node.xz
  rm -f "$tmp"
  echo "$packed" > .devnode/node.version
fi
rm -f .devnode/prologue.sh  # the device commands source test/gpu/prologue.sh, which travels with the tree
# node_modules does not travel (hundreds of MB): the packages the device commands load, found by the dry run
# (bin/gpu-session-prepare.sh --dry-run runs them in a copy without node_modules). onnxruntime-node only its Linux
# x64 binding (its 44 MB library, xz-compressed, is most of the ~13 MB).
modules=(node_modules/vscode-jsonrpc node_modules/@huggingface/tokenizers node_modules/@huggingface/jinja
  node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist/cjs)
lock="$(sha256sum package-lock.json | cut -d' ' -f1) ${modules[*]}"
if [ "$(cat .devnode/node_modules.lock 2>/dev/null)" != "$lock" ] || [ ! -f .devnode/node_modules.tar.xz ]; then
  tar -c "${modules[@]}" | nice xz -T2 -6 > .devnode/node_modules.tar.xz
  echo "$lock" > .devnode/node_modules.lock
fi
du -sh .devnode
