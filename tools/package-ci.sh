#!/bin/bash
# Builds the Debian packages of memmapd from a copy of the tree, checks what they contain and
# runs lintian (failing on errors). Debian 12, as root. Nothing is written inside the tree.
#
#   tools/package-ci.sh [--head] [--keep]
#     --head   package the last commit (git archive HEAD) instead of the working tree
#     --keep   keep the build directory (its path is printed)
set -euo pipefail

start=$(date +%s)
src=$(cd "$(dirname "$0")/.." && pwd)
use_head=no
keep=no
for a in "$@"; do
        case $a in
        --head) use_head=yes ;;
        --keep) keep=yes ;;
        *) echo "usage: $0 [--head] [--keep]" >&2; exit 2 ;;
        esac
done

say() { printf '\n=== %s\n' "$*"; }

# Build dependencies (debian/control) and the tools, from the archive, only those missing.
need=(build-essential dpkg-dev debhelper dh-autoreconf lintian pkg-config
      libjson-c-dev libsystemd-dev libbpf-dev clang bpftool git)
missing=()
for p in "${need[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/memmapd-package.XXXXXX)
cleanup() {
        if [[ $keep == yes ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

say "copying the tree to $work/memmapd"
mkdir "$work/memmapd"
if [[ $use_head == yes ]]; then
        git -C "$src" archive HEAD | tar -x -C "$work/memmapd"
else
        # Tracked and new files, without anything ignored (build products, generated files). One
        # tar reads the list: xargs would split a long one over several archives, and the reader
        # stops at the end of the first.
        git -C "$src" ls-files -z --cached --others --exclude-standard |
                (cd "$src" && tar -c --no-recursion --ignore-failed-read --null --verbatim-files-from -f - -T -) |
                tar -x -C "$work/memmapd"
fi

say "dpkg-buildpackage -us -uc -b"
(cd "$work/memmapd" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 || {
        tail -50 "$work/build.log"
        echo "package-ci: dpkg-buildpackage failed (log above)" >&2
        keep=yes
        exit 1
}
ls -l "$work"/*.deb

say "checking contents"
fail=0
version=$(cd "$work/memmapd" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
check() {
        local pkg=$1; shift
        local deb="$work/${pkg}_${version}_${arch}.deb"
        local listing
        if [[ ! -f $deb ]]; then
                echo "MISSING package $pkg"; fail=1; return
        fi
        listing=$(dpkg -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
        for f in "$@"; do
                if grep -qxE "$f" <<<"$listing"; then
                        echo "ok   $pkg: $f"
                else
                        echo "FAIL $pkg: no $f"; fail=1
                fi
        done
}
check memmapd /usr/sbin/memmapd \
        /lib/systemd/system/memmapd.socket /lib/systemd/system/memmapd.service \
        /usr/lib/sysusers.d/memmapd.conf \
        '/usr/share/man/man8/memmapd.8(.gz)?' '/usr/share/man/man5/memmapd.conf.5(.gz)?'
check memctl /usr/bin/memctl '/usr/share/man/man1/memctl.1(.gz)?' \
        /usr/share/bash-completion/completions/memctl
check libmemctl0 "/usr/lib/$multiarch/libmemctl.so.0" "/usr/lib/$multiarch/libmemctl.so.0.0.0"
check libmemctl-dev /usr/include/libmemctl.h /usr/include/memctl.h "/usr/lib/$multiarch/libmemctl.so" \
        "/usr/lib/$multiarch/pkgconfig/libmemctl.pc" '/usr/share/man/man3/libmemctl.3(.gz)?'

# The unit installed names the installed daemon, and postinst enables the socket.
dpkg-deb --fsys-tarfile "$work/memmapd_${version}_${arch}.deb" |
        tar -xO ./lib/systemd/system/memmapd.service | grep -qx 'ExecStart=/usr/sbin/memmapd' &&
        echo "ok   memmapd: ExecStart=/usr/sbin/memmapd" || { echo "FAIL memmapd: ExecStart"; fail=1; }
dpkg-deb -I "$work/memmapd_${version}_${arch}.deb" postinst | grep -q 'memmapd.socket' &&
        echo "ok   memmapd: postinst handles memmapd.socket" || { echo "FAIL memmapd: postinst"; fail=1; }
dpkg-deb -I "$work/memmapd_${version}_${arch}.deb" postinst | grep -q 'systemd-sysusers' &&
        echo "ok   memmapd: postinst runs systemd-sysusers" || { echo "FAIL memmapd: sysusers"; fail=1; }

say "lintian"
changes=$(ls "$work"/memmapd_"${version}"_"${arch}".changes)
if lintian --fail-on error --tag-display-limit 0 "$changes" > "$work/lintian.log" 2>&1; then
        lint=0
else
        lint=1
fi
cat "$work/lintian.log"
printf 'lintian: %s error(s), %s warning(s)\n' \
        "$(grep -c '^E: ' "$work/lintian.log" || true)" "$(grep -c '^W: ' "$work/lintian.log" || true)"
((lint == 0)) || { echo "FAIL lintian reports errors"; fail=1; }

echo
echo "package-ci: $( ((fail)) && echo FAILED || echo passed ) in $(( $(date +%s) - start )) s"
exit $fail
