import { errorReport, EXIT_USAGE, parseCommandLine, wantsHelp } from '../lib/cli.js';
import { loadConfig } from '../lib/config.js';

/**
 * `npm run worker`: runs one worker process until SIGTERM/SIGINT. Arguments and configuration
 * are checked before anything is connected or created.
 * Exit codes: 0 clean shutdown, 1 fatal error, a service unreachable at start, or shutdown over
 * its bound, 2 bad arguments or configuration.
 */
export const USAGE = `usage: npm run worker
  Runs one ingestion worker (INGEST_CONCURRENCY consumer-group members) until SIGTERM or SIGINT:
  Kafka → decode → batch → ClickHouse insert → commit, dead letters to Redis, metrics on
  METRICS_PORT. Configuration from the environment only: docs/configuration.md.
  -h, --help  this text
exit codes:
  0  clean shutdown (flushed and committed within SHUTDOWN_TIMEOUT_MS)
  1  fatal error, a service unreachable at start, or a shutdown over its bound; one line on stderr
     (then JSON logs on stderr while running)
  2  bad arguments or configuration, every problem listed`;

const argv = process.argv.slice(2);
if (wantsHelp(argv)) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
let config;
try {
  parseCommandLine(argv, {}, false);
  config = loadConfig();
} catch (err) {
  const report = errorReport('worker', err);
  process.stderr.write(`${report.text}\n`);
  process.exit(report.code);
}

// Loaded once the arguments and the configuration are known to be good.
const { createLogger, installProcessLogging } = await import('../lib/logger.js');
const { IngestWorker } = await import('./worker.js');
const log = createLogger({ component: 'main' });
installProcessLogging(log);

try {
  const worker = await IngestWorker.start(config);
  process.stdout.write(`worker consuming; metrics at ${worker.metricsUrl}/metrics\n`);
  worker.onFatal(() => process.exit(1));
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    worker.stop().then(
      () => process.exit(0),
      (err) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
} catch (err) {
  // One line for the operator (a ConfigError found at start, e.g. an unknown event type, is 2);
  // the details, stack included, in the debug log (LOG_LEVEL=debug).
  // ioredis rejects a first connection that failed with only "Connection is closed."; the
  // cause is in the worker's log line just above.
  const redisDown = (err as Error)?.message === 'Connection is closed.';
  const { redactUrl } = await import('../lib/secrets.js');
  const report = errorReport('worker', redisDown ? new Error(`cannot reach Redis at ${redactUrl(config.redis.url)} (connection closed)`) : err);
  log.debug('worker failed to start', { err: err as Error });
  process.stderr.write(`${report.text}\n`);
  process.exit(report.code === EXIT_USAGE ? EXIT_USAGE : 1);
}
