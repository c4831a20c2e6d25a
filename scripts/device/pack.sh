#!/usr/bin/env bash
# Packs what the GPU machine lacks into .devpack/ (git-ignored, carried with the run): node (xz), Dawn for
# linux-x64 (from node_modules/webgpu) and the Vulkan loader with glvnd's libraries (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.devpack/' .git/info/exclude || echo '/.devpack/' >> .git/info/exclude
mkdir -p .devpack /tmp/amd64/partial
xz -T0 -6 -c "$(command -v node)" > .devpack/node.xz
tar -C node_modules -cJf .devpack/dawn.tar.xz webgpu/index.js webgpu/package.json webgpu/dist/linux-x64
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -q >/dev/null
(cd .devpack && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .devpack
