#!/usr/bin/env bash
# A librdkafka >= 2.6.1 for the Python SDK's tests, built once into the ignored cache.
#
# Why: Debian's python3-confluent-kafka 1.7.0 links the system librdkafka 2.0.2, whose SCRAM
# client-final message carries the client nonce twice (librdkafka < 2.6.1,
# confluentinc/librdkafka#4895); Kafka 4.x refuses it as "invalid credentials". librdkafka keeps
# its C ABI, so the Debian binding runs on a newer librdkafka.so.1 through LD_LIBRARY_PATH.
#
# Where from: the librdkafka sources that the npm package @confluentinc/kafka-javascript ships
# (deps/librdkafka), fetched with `npm pack` at a pinned version; built with ./configure && make,
# as that package's own build does (util/configure.js), against the system's OpenSSL, zlib and
# zstd (lz4 builtin, no GSSAPI, no libcurl). Needs gcc, make, pkg-config, libssl-dev,
# zlib1g-dev and libzstd-dev (installed with apt-get when missing and run as root).
#
#   producers/python/scripts/librdkafka.sh build   build when missing (idempotent; a lock makes
#                                                 concurrent runs wait for one build); prints
#                                                 the directory holding librdkafka.so.1
#   producers/python/scripts/librdkafka.sh dir     that directory, when built (exit 1 otherwise)
#
# Environment: LIBRDKAFKA_NPM_PACKAGE (@confluentinc/kafka-javascript@1.10.1, librdkafka 2.15.1),
#              LIBRDKAFKA_CACHE_DIR (<repo>/.cache/librdkafka).
# Progress goes to stderr; stdout is only the directory. About 2 minutes of CPU: 230-280 s on 2
# shared, busy cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
package="${LIBRDKAFKA_NPM_PACKAGE:-@confluentinc/kafka-javascript@1.10.1}"
cache="${LIBRDKAFKA_CACHE_DIR:-$root/.cache/librdkafka}"
# One directory per source package: changing the pin builds again, beside the old build.
slug="$(printf '%s' "$package" | tr -c 'A-Za-z0-9._-' '_')"
out="$cache/$slug"

log() { echo "librdkafka.sh: $*" >&2; }

built() { [ -f "$out/.complete" ] && [ -f "$out/lib/librdkafka.so.1" ]; }

missing_build_deps() {
  local need=()
  command -v gcc >/dev/null || need+=(gcc)
  command -v make >/dev/null || need+=(make)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  command -v npm >/dev/null || { log "npm is required (it fetches $package)"; exit 1; }
  local header pkg
  for pair in openssl/ssl.h:libssl-dev zlib.h:zlib1g-dev zstd.h:libzstd-dev; do
    header="${pair%%:*}" pkg="${pair#*:}"
    [ -f "/usr/include/$header" ] || need+=("$pkg")
  done
  echo "${need[@]}"
}

build() {
  local need; need="$(missing_build_deps)"
  if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing build dependencies (apt): $need"
      # shellcheck disable=SC2086
      { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; }; }
    else
      log "missing build dependencies: $need (install them, e.g. apt-get install $need)"; exit 1
    fi
  fi
  local work; work="$(mktemp -d "$cache/build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  local started=$SECONDS
  log "fetching $package (npm pack) for its librdkafka sources"
  (cd "$work" && npm pack --silent "$package" >npm-pack.log 2>&1) || { cat "$work/npm-pack.log" >&2; log "npm pack $package failed"; exit 1; }
  tar -xzf "$work"/*.tgz -C "$work" package/deps/librdkafka
  local src="$work/package/deps/librdkafka"
  [ -x "$src/configure" ] || { log "$package has no deps/librdkafka/configure"; exit 1; }
  local hex; hex="$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-fA-F]\{6\}\).*/\1/p' "$src/src/rdkafka.h")"
  log "building librdkafka $((16#${hex:0:2})).$((16#${hex:2:2})).$((16#${hex:4:2})) (./configure && make; a few minutes; log in $out.log)"
  # --enable-ssl/zlib/zstd: required (configure fails without them) rather than silently left out.
  if ! (cd "$src" && ./configure --no-download --enable-ssl --enable-zlib --enable-zstd \
          --disable-gssapi --disable-curl --disable-lz4-ext --disable-debug-symbols \
        && make -j"$(nproc)" -C src librdkafka.so.1) >"$out.log" 2>&1; then
    tail -30 "$out.log" >&2; log "build failed (log: $out.log)"; exit 1
  fi
  rm -rf "$out"; mkdir -p "$out/lib" "$out/include/librdkafka"
  cp "$src/src/librdkafka.so.1" "$out/lib/"
  ln -s librdkafka.so.1 "$out/lib/librdkafka.so"
  cp "$src/src/rdkafka.h" "$out/include/librdkafka/"
  touch "$out/.complete"
  log "built $out/lib/librdkafka.so.1 in $((SECONDS - started)) s"
}

case "${1:-}" in
  build)
    mkdir -p "$cache"
    if ! built; then
      exec 9>"$cache/.lock"
      flock 9
      built || build
    fi
    echo "$out/lib"
    ;;
  dir) built && echo "$out/lib" ;;
  *) echo "usage: producers/python/scripts/librdkafka.sh build|dir" >&2; exit 2 ;;
esac
