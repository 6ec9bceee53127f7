import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';

/**
 * A redis-server of a test's or the fault suite's own, on its own port, with the persistence
 * it asks for: started, stopped (SHUTDOWN or SIGKILL) and restarted on the same directory.
 */
export class RedisServer {
  /**
   * The persistence the worker requires of a Redis without WAITAOF or replicas (the project's
   * own Redis in scripts/services.sh starts with the same): AOF fsynced before each reply.
   */
  static readonly DURABLE_ARGS: readonly string[] = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'];

  private proc: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    /** Extra redis-server arguments, e.g. ['--appendonly', 'yes']. */
    readonly args: string[] = [],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server; a no-op while it runs. Fails if the port is taken by another process. */
  async start(timeoutMs = 10_000): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return;
    if (await answers(this.port)) throw new Error(`port ${this.port} is already taken: another redis-server (or process) answers there`);
    mkdirSync(this.dir, { recursive: true });
    this.proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--daemonize', 'no', '--logfile', `${this.dir}/redis.log`, ...this.args], { stdio: 'ignore' });
    const deadline = Date.now() + timeoutMs;
    while (!(await answers(this.port))) {
      if (this.proc.exitCode !== null) throw new Error(`redis-server on ${this.port} exited with ${this.proc.exitCode}; see ${this.dir}/redis.log`);
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SHUTDOWN (clean: writes the AOF) unless `kill`, then waits until the port is closed. */
  async stop(kill = false): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    if (kill) proc.kill('SIGKILL');
    else spawnSync('redis-cli', ['-p', String(this.port), ...this.authArgs(), 'shutdown'], { stdio: 'ignore' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  }

  /** Runs redis-cli against this server, returns its stdout. */
  cli(...args: string[]): string {
    const r = spawnSync('redis-cli', ['-p', String(this.port), ...this.authArgs(), ...args], { encoding: 'utf8' });
    return r.stdout.trim();
  }

  private authArgs(): string[] {
    const i = this.args.indexOf('--requirepass');
    return i >= 0 ? ['--no-auth-warning', '-a', this.args[i + 1]!] : [];
  }
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
