# Worker image: the compiled worker and commands (npm run build → dist/) on plain node, with the
# production dependencies only (no tsx, TypeScript or vitest). Two stages: `build` installs
# everything and compiles; `runtime` is what ships.
#   docker build -t ingest-worker .
#   docker build --build-arg NODE_VERSION=26 -t ingest-worker .   (another Node LTS line)
# Commands in the image: node dist/consumers/main.js (the default), node dist/cli/migrate.js,
# node dist/cli/dlq.js, node dist/cli/query.js, node dist/cli/export-schemas.js.
ARG NODE_VERSION=24

# --- build -----------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app

# Dependencies first, so a code change does not invalidate this layer. npm install, not npm ci:
# npm 11 (Node 24's) refuses this lock file in `npm ci` because it lists chdb's optional
# platform packages for this platform only (npm/cli#4828); npm install takes the lock's
# versions, and --no-save leaves the lock as it is. Its `prepare` compiles the producer
# package (a workspace the worker imports by name) to producers/typescript/dist.
COPY package.json package-lock.json ./
COPY producers/typescript ./producers/typescript
RUN npm install --no-audit --no-fund --no-save

COPY tsconfig.json tsconfig.build.json ./
COPY consumers ./consumers
COPY cli ./cli
COPY lib ./lib
COPY sql ./sql
COPY schemas ./schemas
RUN npm run build

# --- runtime ---------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-slim AS runtime
WORKDIR /app

# Production dependencies only. The producer package is linked by name (its package.json) and
# its compiled dist/ comes from the build stage. --ignore-scripts: the root's `prepare` would
# compile that package with TypeScript, which is not installed here; no production dependency
# needs its install script (chdb's is empty, msgpackr's native part is optional).
COPY package.json package-lock.json ./
COPY producers/typescript/package.json ./producers/typescript/package.json
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund --no-save && npm cache clean --force
COPY --from=build /app/producers/typescript/dist ./producers/typescript/dist
COPY --from=build /app/dist ./dist
# Read at run time from the package root (lib/package-root.ts), not compiled into dist/.
COPY sql/migrations ./sql/migrations
COPY schemas/avro ./schemas/avro

ENV NODE_ENV=production
# Unprivileged user of the base image (uid 1000). ./data is where the embedded engine keeps its
# files when CLICKHOUSE_URL is unset (single-process setups only). With CLICKHOUSE_URL set the
# embedded engine is never loaded, so the image also runs where chdb has no binary (arm64 builds
# from this lock file, for one).
RUN mkdir -p /app/data && chown node:node /app/data
USER node

# /metrics, /healthz, /readyz (and /query)
EXPOSE 9464

# Liveness, not readiness: /healthz fails only when the worker itself is broken; a dependency
# that is down shows on /readyz, and restarting would not bring it back. node's fetch, since the
# slim image has no curl. It follows METRICS_PORT; a METRICS_HOST other than 0.0.0.0 or
# 127.0.0.1 needs its own healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.METRICS_PORT || 9464}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form with node itself, no npm or shell in between: SIGTERM from Docker or Kubernetes
# reaches the worker (which handles it, also as PID 1), and its graceful shutdown (flush, commit,
# disconnect within SHUTDOWN_TIMEOUT_MS) runs.
# --max-semi-space-size=64: a larger young generation for the worker's short-lived decoded rows;
# fewer scavenges and promotions (a 1M-row drain went from ~53k to ~68-71k rows/s, BENCHMARKS.md).
CMD ["node", "--max-semi-space-size=64", "dist/consumers/main.js"]
