#!/bin/sh
# Turn a fresh minbase tree (mmdebstrap) into a small container root filesystem: apt sources for the mirror,
# no documentation or caches, no services started by package installs inside image builds.
# Usage: finalize-rootfs.sh ROOTFS MIRROR SUITE [SECURITY_MIRROR]
set -eu

rootfs=$1
mirror=$2
suite=$3
security_mirror=${4:-}

[ -f "$rootfs/etc/debian_version" ] || { echo "not a bootstrapped tree: $rootfs" >&2; exit 1; }

{
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    if [ -n "$security_mirror" ]; then
        echo "deb $security_mirror $suite-security main"
    fi
} >"$rootfs/etc/apt/sources.list"

# Later package installs (the thin Dockerfiles) skip documentation, man pages and translations.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-container-minimal" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG

# No recommended packages and no package caches kept in image layers.
cat >"$rootfs/etc/apt/apt.conf.d/90-container" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
CFG

# Package maintainer scripts must not try to start daemons during image builds.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/usr/share/lintian/"* \
    "$rootfs/usr/share/bash-completion"
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"* "$rootfs/var/cache/debconf/"*-old \
    "$rootfs/var/log/"*.log "$rootfs/var/log/apt/"* "$rootfs/tmp/"* "$rootfs/var/tmp/"*
# glibc's iconv modules for legacy character sets: nothing in these images converts through iconv
# (Python and PostgreSQL bring their own codecs; UTF-8 and Latin-1 are built into glibc). 8 MB.
find "$rootfs/usr/lib" -path '*/gconv/*.so' -delete
# Docker provides these per container.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
