#!/usr/bin/env bash
# Installs the two Kafka clients that bench/kafka-clients.ts compares with kafkajs, for the
# benchmark only, at pinned versions, into the ignored .cache/bench-clients (the Confluent client
# is no dependency of the project; @platformatic/kafka is, at a caret range, but the bench
# measures its own pinned copy).
# Idempotent: exits at once when the pinned versions already load from there.
#   bench/install-clients.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/usage.sh"
usage_or_refuse install-clients.sh "$@" <<'USAGE'
usage: bash bench/install-clients.sh
Installs the Kafka clients the benchmark compares with kafkajs, at pinned versions, into
.cache/bench-clients (a librdkafka build the first time, about 2.5 minutes); does nothing when
they already load from there.
exit codes:
  0  installed (or already there)
  1  an install or the build failed
  2  bad arguments
USAGE
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.cache/bench-clients"
# Pinned: the benchmark's figures are only comparable between runs of the same versions.
packages=("@confluentinc/kafka-javascript@1.10.1" "@platformatic/kafka@1.35.0")

# Every package resolves from $dir at its pinned version, and the native binding of the
# Confluent client loads (a half-finished build leaves the package without it).
installed() {
  node -e '
    const { createRequire } = require("node:module");
    const { readFileSync } = require("node:fs");
    const [dir, ...pins] = process.argv.slice(1);
    const requireFromDir = createRequire(`${dir}/`);
    const found = [];
    for (const pin of pins) {
      const at = pin.lastIndexOf("@");
      const [name, want] = [pin.slice(0, at), pin.slice(at + 1)];
      // Resolution walks up to the project node_modules when the package is missing here.
      const path = requireFromDir.resolve(name);
      if (!path.startsWith(`${dir}/node_modules/`)) throw new Error(`${name} resolves to ${path}, outside ${dir}`);
      // Read by path: @platformatic/kafka does not export its package.json.
      const { version } = JSON.parse(readFileSync(`${dir}/node_modules/${name}/package.json`, "utf8"));
      if (version !== want) throw new Error(`${name} is ${version}, want ${want}`);
      found.push(`${name} ${version}`);
    }
    const { librdkafkaVersion } = requireFromDir("@confluentinc/kafka-javascript");
    console.log(`install-clients: ${found.join(", ")} (librdkafka ${librdkafkaVersion}) in ${dir}`);
  ' "$dir" "${packages[@]}"
}

if installed 2>/dev/null; then exit 0; fi

# CKJS_LINKING=dynamic (below) configures the librdkafka bundled with the Confluent client
# without --install-deps, i.e. against the system's zlib, zstd, lz4, OpenSSL and SASL headers
# instead of downloading and building each; librdkafka-dev depends on all of them. The binding
# still loads the bundled librdkafka (build/deps, by rpath), not Debian's older one.
if ! dpkg -s librdkafka-dev >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "install-clients: installing librdkafka-dev (Debian package)"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y librdkafka-dev \
    || { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y librdkafka-dev; }
fi

mkdir -p "$dir"
# `npm install --prefix` wants a package.json in the folder, or it walks up to the project's.
[ -f "$dir/package.json" ] || echo '{ "private": true }' >"$dir/package.json"
echo "install-clients: installing ${packages[*]} into $dir (compiles librdkafka: a few minutes)"
# nice: the build runs `make -j` (no job limit) and should not starve a bench or tests
# running at the same time. ~/.npmrc's nodedir (node headers for node-gyp) applies as usual.
CKJS_LINKING=dynamic nice -n 10 npm install --prefix "$dir" --no-save --no-audit --no-fund "${packages[@]}"
installed
