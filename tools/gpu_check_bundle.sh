#!/usr/bin/env bash
# tools/gpu_check_bundle.sh — packs what a GPU host needs to check topology
# discovery against the real hardware, for a machine where nothing can be
# installed: the ringserve binary, every shared library it loads (with the
# dynamic loader), hwloc's PCI plugin, a GPU model and a run script.
#
#   tools/gpu_check_bundle.sh [BUILD_DIR] [OUT_DIR]   # default: build gpucheck
#   (copy OUT_DIR to the GPU host)  OUT_DIR/run.sh
#
# run.sh prints nvidia-smi's view (GPUs, PCI bus ids, CPU and NUMA affinity)
# next to `ringserve topo` (the GPUs hwloc found, their NUMA node and CPUs)
# and the plan for a model placed on GPU 0, so the two can be compared.
# docs/design.md (Topology) has what it showed on an H100 host.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
OUT="${2:-$ROOT/gpucheck}"
[ -x "$BUILD/ringserve" ] || { echo "gpu_check_bundle: $BUILD/ringserve missing (ninja -C $BUILD)" >&2; exit 1; }
PLUGIN=/usr/lib/x86_64-linux-gnu/hwloc/hwloc_pci.so
[ -f "$PLUGIN" ] || { echo "gpu_check_bundle: $PLUGIN missing (apt-get install libhwloc-plugins)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/plugins" "$OUT/models/gpu-identity/1"
cp "$BUILD/ringserve" "$OUT/"
cp "$PLUGIN" "$OUT/plugins/"
for bin in "$BUILD/ringserve" "$PLUGIN"; do
  ldd "$bin" | awk '$3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | while read -r lib; do
    cp -Ln "$lib" "$OUT/lib/" 2>/dev/null || true
  done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$OUT/lib/"
sed 's/^name: identity$/name: gpu-identity/; s/^placement: .*/placement: {device: gpu, gpus: [0]}/' \
  "$ROOT/models/identity/1/model.yaml" > "$OUT/models/gpu-identity/1/model.yaml"

cat > "$OUT/run.sh" <<'EOF'
#!/usr/bin/env bash
# GPU host check: nvidia-smi's view, then ringserve's (see tools/gpu_check_bundle.sh)
D="$(cd "$(dirname "$0")" && pwd)"
RS() { HWLOC_PLUGINS_PATH="$D/plugins" "$D/lib/ld-linux-x86-64.so.2" --library-path "$D/lib" "$D/ringserve" "$@"; }
echo "== nvidia-smi"
nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total --format=csv 2>&1 | head -20
nvidia-smi topo -m 2>&1 | head -20
echo "== lscpu"
lscpu | grep -E '^CPU\(s\)|NUMA|Model name'
echo "== ringserve topo"
RS topo 2>&1 | head -60
echo "== ringserve topo: a model on GPU 0"
CFG="$(mktemp)"
printf 'models:\n  repository: [%s/models]\n  load: [gpu-identity]\n' "$D" > "$CFG"
RS topo --config "$CFG" 2>&1 | awk '/^plan/ {p = 1} p || /^ringserve topo:/'
rm -f "$CFG"
EOF
chmod +x "$OUT/run.sh"
echo "gpu_check_bundle: $OUT ($(du -sh "$OUT" | cut -f1)); run $OUT/run.sh on the GPU host"
