import { ConfigError, loadConfig } from '../lib/config.js';
import { createLogger, installProcessLogging } from '../lib/logger.js';
import { IngestWorker } from './worker.js';

/**
 * `npm run worker`: runs one worker process until SIGTERM/SIGINT.
 * Exit codes: 0 clean shutdown, 1 fatal error or shutdown over its bound, 2 bad configuration.
 */
const log = createLogger({ component: 'main' });
installProcessLogging(log);
let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

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
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  log.error('worker failed to start', { err: err as Error });
  process.exit(1);
}
