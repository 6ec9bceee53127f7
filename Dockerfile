# Worker image: runs TypeScript directly with tsx (the one build step: the producer package, below).
# tsx is a devDependency, so the image installs all dependencies (`npm ci`, not --omit=dev).
# Do not set NODE_ENV=production before `npm ci`: npm would then skip devDependencies.
FROM node:20-slim

WORKDIR /app

# Dependencies first, so code changes do not invalidate this layer. npm ci also installs
# the embedded engine's prebuilt library (@chdb/lib-linux-*); the image does not use it
# when CLICKHOUSE_URL is set, but lib/clickhouse.ts imports chdb either way.
# The producer package (producers/typescript) is a workspace the worker imports by name: npm ci
# links it into node_modules and the root's `prepare` compiles it to its dist/, which is what
# the name resolves to at run time.
COPY package.json package-lock.json ./
COPY producers/typescript ./producers/typescript
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .

# Unprivileged user of the base image (uid 1000). ./data is where the embedded engine would
# keep its files when CLICKHOUSE_URL is unset (single-process setups only).
RUN mkdir -p /app/data && chown node:node /app/data
USER node

# /metrics, /healthz, /readyz
EXPOSE 9464

# `node --import tsx` loads TypeScript in the same process (unlike the `tsx` CLI, which
# runs a child process), so SIGTERM from Docker or Kubernetes reaches the worker directly
# and its graceful shutdown (flush, commit, disconnect within SHUTDOWN_TIMEOUT_MS) runs.
# --max-semi-space-size=64: a larger young generation for the worker's short-lived decoded rows;
# fewer scavenges and promotions (a 1M-row drain went from ~53k to ~68-71k rows/s, BENCHMARKS.md).
CMD ["node", "--max-semi-space-size=64", "--import", "tsx", "consumers/main.ts"]
