#!/usr/bin/env bash
# Install the edgewatch gateway runtime on Raspberry Pi OS 64-bit (bookworm) or NVIDIA Jetson (JetPack 5/6, Ubuntu).
#
#   sudo ./install.sh [--device-id pump3] [--from /path/to/edgewatch-src-or-wheel] [--bundle-key bundle.pub]
#
# Creates the system user 'edgewatch' (no login shell, group dialout for serial ports), a venv in
# /opt/edgewatch/venv with the 'edge' extra (ai-edge-litert, paho-mqtt, pyserial: no TensorFlow),
# /etc/edgewatch/ for the config and keys, the systemd unit edgewatch@.service and the udev example.
#
# 32-bit ARM (armv7l, Raspberry Pi OS 32-bit): ai-edge-litert publishes no wheel for it. The edge
# extra skips it there, and this script installs tflite-runtime instead, which edge_runtime falls back
# to (edge_runtime.scorer.load_interpreter_class). tflite-runtime wheels stop at Python 3.11 on armv7l:
# if pip finds none, use a 64-bit OS image (recommended; Pi 3/4/5 and Zero 2 W run it) .
set -euo pipefail

DEVICE_ID=""
SRC="edgewatch"
BUNDLE_KEY=""
PREFIX=/opt/edgewatch
while [ $# -gt 0 ]; do
  case "$1" in
    --device-id) DEVICE_ID="$2"; shift 2 ;;
    --from) SRC="$2"; shift 2 ;;
    --bundle-key) BUNDLE_KEY="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "Error: unknown argument '$1'; see --help" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "Error: run as root (sudo $0)" >&2; exit 2; }

ARCH="$(uname -m)"
case "$ARCH" in
  aarch64|x86_64) LITERT=ok ;;
  armv7l|armv6l) LITERT=none ;;
  *) echo "Error: unsupported architecture '$ARCH'; use aarch64 (Pi OS 64-bit, Jetson) or x86_64" >&2; exit 2 ;;
esac
if [ -f /etc/nv_tegra_release ]; then
  echo "Jetson detected: edgewatch runs the int8 model on the CPU (XNNPACK); the GPU delegate is optional (--delegate gpu:LIB)."
fi

apt-get update -qq
apt-get install -y -qq python3 python3-venv python3-pip mosquitto-clients >/dev/null

id edgewatch >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edgewatch --shell /usr/sbin/nologin \
  --groups dialout edgewatch

python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade pip
"$PREFIX/venv/bin/pip" install -q "${SRC}[edge,ops]" 2>/dev/null || "$PREFIX/venv/bin/pip" install -q "${SRC}[edge]"
if [ "$LITERT" = none ]; then
  echo "armv7l: no ai-edge-litert wheel; installing tflite-runtime instead"
  "$PREFIX/venv/bin/pip" install -q tflite-runtime || {
    echo "Error: no tflite-runtime wheel for this Python on $ARCH; install a 64-bit OS image" >&2; exit 1; }
fi
"$PREFIX/venv/bin/python" -c "from edge_runtime.scorer import load_interpreter_class as f; print('interpreter:', f()[2])"

install -d -m 0750 -o root -g edgewatch /etc/edgewatch
install -d -m 0750 -o edgewatch -g edgewatch /var/lib/edgewatch
HERE="$(cd "$(dirname "$0")" && pwd)"
install -m 0644 "$HERE/systemd/edgewatch@.service" /etc/systemd/system/edgewatch@.service
[ -f /etc/udev/rules.d/99-edgewatch-sensor.rules ] || \
  install -m 0644 "$HERE/udev/99-edgewatch-sensor.rules" /etc/edgewatch/99-edgewatch-sensor.rules.example
[ -z "$BUNDLE_KEY" ] || install -m 0644 "$BUNDLE_KEY" /etc/edgewatch/bundle.pub
if [ -n "$DEVICE_ID" ]; then
  [ -f "/etc/edgewatch/$DEVICE_ID.toml" ] || \
    sed "s/pump3/$DEVICE_ID/g" "$HERE/edgewatch.example.toml" > "/etc/edgewatch/$DEVICE_ID.toml"
  install -d -m 0750 -o edgewatch -g edgewatch "/var/lib/edgewatch/models/$DEVICE_ID/releases"
  chgrp edgewatch "/etc/edgewatch/$DEVICE_ID.toml"; chmod 0640 "/etc/edgewatch/$DEVICE_ID.toml"
  systemctl daemon-reload
  echo "Next: edit /etc/edgewatch/$DEVICE_ID.toml, put the MQTT password in /etc/edgewatch/$DEVICE_ID.mqtt-password,"
  echo "      flash a bundle with 'edgewatch deploy BUNDLE --to ssh://USER@THIS-HOST/var/lib/edgewatch/models/$DEVICE_ID',"
  echo "      then: systemctl enable --now edgewatch@$DEVICE_ID"
fi
