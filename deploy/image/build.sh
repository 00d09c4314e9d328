#!/usr/bin/env bash
# Builds paved's container image as an OCI image layout, with no container
# daemon: a static (musl) paved, laid out by umoci on an empty base.
#
#   deploy/image/build.sh [OUT]     OUT defaults to target/image
#
# The image holds only paved, CA certificates for registries, /etc/passwd
# naming the non-root user 65532, and an empty /tmp: no shell, no package
# manager, no setuid file, so paved's own supply-chain profile passes on it.
# It runs as 65532:65532 and needs nothing written to its root filesystem.
# Push it with skopeo (README.md says how).
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-target/image}"
target=x86_64-unknown-linux-musl
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
repository="ghcr.io/paved-dev/paved"

# What the build needs, installed when missing: umoci (the layout),
# musl-gcc (ring and mimalloc compile C for the static target).
missing=()
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target" >/dev/null

cargo build --locked --profile dist --target "$target" -p paved
binary="target/$target/dist/paved"
# A static binary has no program interpreter and needs no shared library.
if readelf -l "$binary" | grep -q "Requesting program interpreter"; then
  echo "build.sh: $binary is not static" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home/nonroot"
install -m 0755 "$binary" "$rootfs/usr/local/bin/paved"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
umoci init --layout "$out"
umoci new --image "$out:$version"
rootless=(); [ "$(id -u)" = 0 ] || rootless=(--rootless)
umoci unpack "${rootless[@]}" --image "$out:$version" "$work/bundle" >/dev/null
cp -a "$rootfs/." "$work/bundle/rootfs/"
[ "$(id -u)" = 0 ] && chown 65532:65532 "$work/bundle/rootfs/home/nonroot"
umoci repack --image "$out:$version" "$work/bundle"
umoci config --image "$out:$version" \
  --os linux --architecture amd64 \
  --config.user 65532:65532 \
  --config.entrypoint /usr/local/bin/paved \
  --config.env PATH=/usr/local/bin \
  --config.env HOME=/home/nonroot \
  --config.workingdir /home/nonroot \
  --config.label "org.opencontainers.image.title=paved" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --manifest.annotation "org.opencontainers.image.ref.name=$repository:$version" \
  --history.created_by "deploy/image/build.sh"
umoci gc --layout "$out"
echo "built $repository:$version as the OCI layout $out (tag $version)"
