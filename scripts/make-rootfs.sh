#!/bin/sh
# make-rootfs.sh DIR: build a minimal busybox root filesystem in DIR (idempotent).
#
# Used by the tests and CI to start podman (--rootfs DIR) and runc containers without an
# image registry. Needs a static busybox (Debian: apt-get install busybox-static), since
# the rootfs holds no libc. Re-running it on the same DIR only fills in what is missing.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1

busybox=${BUSYBOX:-}
if [ -z "$busybox" ]; then
    for cand in /bin/busybox /usr/bin/busybox; do
        if [ -x "$cand" ]; then busybox=$cand; break; fi
    done
fi
if [ -z "$busybox" ] || [ ! -x "$busybox" ]; then
    echo "$0: no busybox found; hint: apt-get install busybox-static" >&2
    exit 1
fi
# A dynamically linked busybox would need the host's libc inside the rootfs.
if command -v file >/dev/null 2>&1 && ! file -L "$busybox" | grep -q 'statically linked'; then
    echo "$0: $busybox is not statically linked; hint: apt-get install busybox-static" >&2
    exit 1
fi

mkdir -p "$dir/bin" "$dir/dev" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/tmp" "$dir/run" \
    "$dir/root"
chmod 1777 "$dir/tmp"
if [ ! -x "$dir/bin/busybox" ] || ! cmp -s "$busybox" "$dir/bin/busybox"; then
    cp "$busybox" "$dir/bin/busybox.new"
    chmod 755 "$dir/bin/busybox.new"
    mv -f "$dir/bin/busybox.new" "$dir/bin/busybox"
fi
for applet in sh ash sleep ps ls cat true false echo env id top kill mkdir rm hostname \
    wc grep head tail uname; do
    if [ ! -e "$dir/bin/$applet" ] && [ ! -L "$dir/bin/$applet" ]; then
        ln -s busybox "$dir/bin/$applet"
    fi
done
[ -e "$dir/etc/passwd" ] || printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/etc/passwd"
[ -e "$dir/etc/group" ] || printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
[ -e "$dir/etc/hostname" ] || echo pidns-rootfs >"$dir/etc/hostname"
exit 0
