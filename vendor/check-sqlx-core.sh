#!/usr/bin/env bash
# vendor/sqlx-core must be sqlx-core 0.9.0 from crates.io plus exactly vendor/sqlx-core.patch
# (TCP_NODELAY, see vendor/README.md). Downloads the published crate, checks its SHA-256 (the
# crates.io index checksum of sqlx-core 0.9.0), applies the patch and compares the trees.
set -euo pipefail
vendor=$(cd "$(dirname "$0")" && pwd)
version=0.9.0
sha256=05b44e85bf579a8eeb4ceaa77a3a523baf2bf0e9bac7e40f405d537b5d2d5ccb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -sfL --retry 3 -o "$work/sqlx-core.crate" "https://static.crates.io/crates/sqlx-core/sqlx-core-$version.crate"
echo "$sha256  $work/sqlx-core.crate" | sha256sum -c --quiet -
tar xzf "$work/sqlx-core.crate" -C "$work"
patch -s -p1 -d "$work/sqlx-core-$version" <"$vendor/sqlx-core.patch"
# Files cargo writes or packs that are not part of the source: .cargo-ok (unpack marker),
# .cargo_vcs_info.json and Cargo.lock (packaging metadata, unused for a dependency).
if diff -r --exclude=.cargo-ok --exclude=.cargo_vcs_info.json --exclude=Cargo.lock \
  "$work/sqlx-core-$version" "$vendor/sqlx-core"; then
  echo "vendor/sqlx-core = sqlx-core $version + vendor/sqlx-core.patch"
else
  echo "vendor/sqlx-core differs from sqlx-core $version + vendor/sqlx-core.patch (diff above)" >&2
  exit 1
fi
