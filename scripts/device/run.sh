#!/usr/bin/env bash
# The GPU machine's check (device tool: carry .devpack and dist, run `bash scripts/device/run.sh`): shape A
# through Dawn on the card (webgpu rows, the GPU copy bound, kernel GPU time), webgpu against the float64
# reference on every norm and layout, and PyTorch's BatchNorm2d on the same card. Results land in $OUT.
set -e
for f in .devpack/*.deb; do dpkg -x "$f" /; done; ldconfig
xz -dc .devpack/node.xz > /tmp/node && chmod +x /tmp/node
mkdir -p node_modules && tar -C node_modules -xJf .devpack/dawn.tar.xz
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv | tee "$OUT/gpu.txt"
/tmp/node dist/cli/main.js bench --shape A --reps 9 --no-peers --systems normkit-webgpu --threads 16 2>&1 | tee "$OUT/bench.txt"
/tmp/node scripts/device/check.mjs 2>&1 | tee "$OUT/check.txt"
python3 scripts/device/torch_bn.py 2>&1 | tee "$OUT/torch.txt"
