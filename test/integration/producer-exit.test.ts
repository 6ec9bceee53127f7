import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, createTopicsWithLeaders } from '../../lib/kafka.js';
import { testConfig, waitFor } from '../helpers/stack.js';

const root = resolve(import.meta.dirname, '../..');

/** Runs test/helpers/exit-child.ts, waits until it has emitted, sends SIGTERM, resolves with its exit and stderr. */
async function emitThenSigterm(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(root, 'test/helpers/exit-child.ts'), ...args], { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((ok, fail) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('emitted') && ok());
    child.on('exit', (code) => fail(new Error(`child exited (${code}) before emitting: ${stderr}`)));
  });
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGTERM');
  return new Promise((ok) => child.on('exit', (code, signal) => ok({ code, signal, stderr })));
}

/**
 * ProducerOptions.flushOnExit on a real broker: SIGTERM to a host app that never calls close()
 * flushes the queued events first, then the process still ends by the signal. Without the option,
 * Node's default SIGTERM handling ends the process at once and the queued events are lost (as the
 * README says).
 */
describe('producer flushOnExit', () => {
  const config = testConfig();
  const topic = `${config.kafka.topicPrefix}cost_metrics`;
  let admin: Admin;
  const records = async () => (await waitFor('offsets', () => admin.fetchTopicOffsets(topic), 60_000, 500)).reduce((n, p) => n + Number(p.high), 0);

  beforeAll(async () => {
    admin = createKafka(config.kafka).admin();
    await admin.connect();
    await createTopicsWithLeaders(admin, [{ topic, numPartitions: 2, replicationFactor: 1 }]);
  }, 60_000);
  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('without it, SIGTERM loses the queued events', async () => {
    const exit = await emitThenSigterm([config.kafka.brokers.join(','), config.kafka.topicPrefix, '250', 'false']);
    expect(exit.signal).toBe('SIGTERM');
    expect(await records()).toBe(0);
  }, 120_000);

  it('with it, SIGTERM flushes the queued events, then the process ends by the signal', async () => {
    const exit = await emitThenSigterm([config.kafka.brokers.join(','), config.kafka.topicPrefix, '250', 'true']);
    expect(exit.signal).toBe('SIGTERM');
    expect(await records()).toBe(250);
  }, 120_000);
});
