#!/usr/bin/env bash
# Debian/Ubuntu packages the C++ library (cpp/) builds and tests with. Uses sudo when
# not run as root. OpenVINO's C++ SDK comes from the `openvino` wheel instead (pip).
set -euo pipefail
packages=(cmake g++ make pkg-config libvips-dev nlohmann-json3-dev libgtest-dev libcpp-httplib-dev libssl-dev)
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "C++ dependencies already installed"
  exit 0
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
