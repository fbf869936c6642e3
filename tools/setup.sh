#!/bin/sh
# Installs what a fresh Debian 12 machine lacks to build and test memmapd, then builds it.
# Usage: tools/setup.sh [BUILDDIR [CONFIGURE-OPTIONS...]]   (as root, for apt-get)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$top/build}
[ $# -gt 0 ] && shift

pkgs="build-essential autoconf automake libtool pkg-config libsystemd-dev libjson-c-dev
      libcmocka-dev libbpf-dev clang bpftool binutils elfutils procps systemd varlink-go gcc-multilib"
missing=
for p in $pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
        echo "Installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null 2>&1
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] && [ config.status -nt "$top/configure" ] || "$top/configure" --enable-werror "$@" >/dev/null
make -j"$(nproc)" >/dev/null
echo "Built in $builddir"
