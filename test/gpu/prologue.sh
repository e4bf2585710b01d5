# shellcheck shell=bash
# Sourced first by every command on the GPU machine: puts node, unpacked once per machine from .devnode/node.xz
# (test/gpu/pack_node.sh), on PATH, unpacks the node packages that came with it, and puts CUDA 13's libraries on
# the loader path.
# DEVNODE_DIR (default /tmp/devnode) is where node is unpacked: the dry run points it at a fresh folder so that it
# runs the node that travels, as the device does.
devnode_dir=${DEVNODE_DIR:-/tmp/devnode}
if [ ! -x "$devnode_dir/bin/node" ]; then
  mkdir -p "$devnode_dir/bin" && xz -dc .devnode/node.xz > "$devnode_dir/bin/node" && chmod +x "$devnode_dir/bin/node"
fi
export PATH=$devnode_dir/bin:$PATH
# node_modules does not travel: the packages the device commands load come in .devnode (test/gpu/pack_node.sh).
if [ ! -d node_modules/vscode-jsonrpc ] && [ -f .devnode/node_modules.tar.xz ]; then
  xz -dc .devnode/node_modules.tar.xz | tar -x
fi
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# cuBLAS/cuBLASLt may also (or only) come with the Python environment's nvidia-* packages.
for d in /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib; do
  [ -d "$d" ] && LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
done
export LD_LIBRARY_PATH
echo "device: $(node --version) node, $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | head -1)"
