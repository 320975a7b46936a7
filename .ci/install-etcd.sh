#!/usr/bin/env bash
# Make sure an `etcd` server binary is available for test/meta/etcd.test.ts (which starts a real one).
# Idempotent and non-interactive: does nothing when `etcd` is already on PATH (or at /usr/bin/etcd);
# otherwise installs Debian's etcd-server package with apt-get (needs root, as CI runs). The package's
# postinst does not leave a server running in containers; the tests start their own on ephemeral ports.
set -euo pipefail

if command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; then
  echo "etcd present: $( (command -v etcd || echo /usr/bin/etcd) | head -n1) ($(etcd --version 2>/dev/null | head -n1 || true))"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-etcd: etcd is missing and apt-get is not available; install etcd 3.4+ by hand or set LOGCTL_TEST_ETCD=etcd://host:port" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
# The package may enable a system service; the tests never use it, and a service holding port 2379 would only
# confuse someone reading `ss -ltn`. Stop it if systemd runs here (it does not in most CI containers).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  $SUDO systemctl stop etcd || true
fi
echo "etcd installed: $(etcd --version | head -n1)"
