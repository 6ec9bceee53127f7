import { Admin } from '@platformatic/kafka';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import { platformaticClientOptions, type OAuthBearerProvider } from '../lib/kafka.js';
import { abortableSleep } from '../lib/retry.js';

/**
 * Takes a crashed consumer's old member out of its group, so the consumer's restart is not
 * held up by it: after a crash inside the process (kafkajs restarts the consumer), and after
 * the process's own restart when the worker has an instance id (leavePreviousRun).
 *
 * kafkajs restarts a crashed consumer (a broker or the group's coordinator lost) as a NEW group
 * member, without leaving under the old member id. The coordinator then waits for the old member
 * to rejoin until its session times out before it completes the rebalance: every crash stalled
 * ingest for a whole session timeout on top of the outage (the fault suite's coordinator
 * kill -9: 17-29 s). A LeaveGroup sent for the old id (any client may send one, Kafka 2.4+)
 * ends that wait at once. The old id is not used by anyone after the crash, so removing it
 * cannot disturb a live member.
 */
export type MemberRemover = (memberId: string, signal: AbortSignal) => Promise<void>;

/**
 * The removal's bookkeeping for one kafkajs consumer: `joined` at every GROUP_JOIN (the
 * member id of the generation), `crashed` at a CRASH kafkajs restarts from (the old id is
 * removed, in the background, until it is gone or the consumer joined again), `stop` when the
 * consumer stops.
 */
export class CrashedMemberRemoval {
  private memberId: string | undefined;
  private removal: AbortController | undefined;

  constructor(
    private readonly remove: MemberRemover,
    private readonly onOutcome: (memberId: string, err?: unknown) => void = () => undefined,
  ) {}

  joined(memberId: string): void {
    this.memberId = memberId;
    this.removal?.abort();
  }

  crashed(): void {
    const old = this.memberId;
    this.memberId = undefined;
    if (!old) return;
    this.removal?.abort();
    const removal = (this.removal = new AbortController());
    void this.remove(old, removal.signal).then(
      () => !removal.signal.aborted && this.onOutcome(old),
      (err: unknown) => this.onOutcome(old, err),
    );
  }

  stop(): void {
    this.removal?.abort();
    this.memberId = undefined;
  }
}

/** Kafka's UNKNOWN_MEMBER_ID: the member is gone already (its session expired), which is the goal. */
const UNKNOWN_MEMBER_ID = 25;
/** COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: ask again shortly. */
const COORDINATOR_MOVING = new Set([14, 15, 16]);

/** A group member as Kafka describes it: enough to tell whose it is. */
export interface DescribedMember {
  memberId: string;
  clientId: string;
  clientHost: string;
}

/**
 * The members a worker starting under `clientId` takes out of its group before it joins: those
 * of its previous run. A worker with an instance id (INGEST_INSTANCE_ID) connects under a client
 * id of its own, `<KAFKA_CLIENT_ID>-<instance id>`, which its restarts keep and no other worker
 * has (ids are unique among the group's workers); so a member under it, while this run has not
 * joined yet, is the previous run's, dead after a kill -9 but held by the coordinator until its
 * session expires. Members under any other client id are never touched.
 */
export function previousRunMembers(members: Iterable<DescribedMember>, clientId: string): DescribedMember[] {
  return [...members].filter((m) => m.clientId === clientId);
}

/**
 * At a start with an instance id: removes this worker's previous run's members from the group
 * before its own join, bounded by `timeoutMs`. Never fails the start: without the removal the
 * dead members leave when their sessions expire, as they always did.
 */
export async function leavePreviousRun(remover: Pick<ReturnType<typeof platformaticMemberRemover>, 'removePreviousRun'>, clientId: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const removed = await Promise.race([
      remover.removePreviousRun(clientId, deadline.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          deadline.abort();
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
    if (removed.length > 0) log.info("removed the previous run's members of this worker instance from the group", { clientId, members: removed });
  } catch (err) {
    log.warn("could not remove the previous run's members of this worker instance from the group; they leave when their sessions expire", { clientId, err: err as Error });
  } finally {
    clearTimeout(timer);
    deadline.abort();
  }
}

/**
 * A MemberRemover on @platformatic/kafka's admin client (kafkajs 2.2.4 has no LeaveGroup for
 * another member). It tries every `intervalMs` while the coordinator moves (a killed
 * coordinator's group is unavailable until Kafka elects another), until it succeeds, the member
 * is unknown, or `signal` aborts (the consumer joined again, or the worker stops).
 */
export function platformaticMemberRemover(
  config: Config['kafka'],
  groupId: string,
  oauthBearerProvider?: OAuthBearerProvider,
  intervalMs = 500,
): { remove: MemberRemover; removePreviousRun: (clientId: string, signal: AbortSignal) => Promise<DescribedMember[]>; close: () => Promise<void> } {
  let admin: Admin | undefined;
  const client = () =>
    (admin ??= new Admin({ ...platformaticClientOptions(config, 'member-removal', oauthBearerProvider), retries: 0 }));
  const leave = async (members: DescribedMember[]) => {
    try {
      await client().removeMembersFromConsumerGroup({ groupId, members: members.map((m) => ({ memberId: m.memberId, reason: 'the same worker instance restarted (INGEST_INSTANCE_ID)' })) });
    } catch (err) {
      // Gone meanwhile (their sessions expired): the goal.
      const codes = errorCodes(err);
      if (codes.length === 0 || codes.some((code) => code !== UNKNOWN_MEMBER_ID)) throw err;
    }
  };
  return {
    async remove(memberId, signal) {
      while (!signal.aborted) {
        try {
          await client().removeMembersFromConsumerGroup({ groupId, members: [{ memberId, reason: 'the consumer crashed and restarts as a new member' }] });
          return;
        } catch (err) {
          if (errorCodes(err).includes(UNKNOWN_MEMBER_ID)) return;
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    },
    /**
     * Takes the previous run's members (previousRunMembers) out of the group, in one LeaveGroup;
     * resolves to them. Tried again every `intervalMs`, until `signal` aborts, while the group has
     * no coordinator yet (a new broker creates its offsets topic at the first FindCoordinator);
     * any other error ends it, and the caller starts without it.
     */
    async removePreviousRun(clientId, signal) {
      for (;;) {
        try {
          const group = (await client().describeGroups({ groups: [groupId] })).get(groupId);
          const members = [...(group?.members.values() ?? [])].map((m) => ({ memberId: m.id, clientId: m.clientId, clientHost: m.clientHost }));
          const previous = previousRunMembers(members, clientId);
          if (previous.length > 0) await leave(previous);
          return previous;
        } catch (err) {
          if (signal.aborted || !errorCodes(err).some((code) => COORDINATOR_MOVING.has(code))) throw err;
        }
        await abortableSleep(intervalMs, signal);
      }
    },
    close: async () => {
      await admin?.close().catch(() => undefined);
    },
  };
}

/**
 * Kafka error codes anywhere in a (nested) platformatic error. 0 (NONE) is left out: a response
 * whose only failures are per member carries errorCode 0 at its top, which is not an error.
 */
export function errorCodes(err: unknown, depth = 0): number[] {
  if (!err || typeof err !== 'object' || depth > 5) return [];
  const e = err as { apiCode?: unknown; errors?: unknown[]; cause?: unknown; response?: { errorCode?: unknown; members?: Array<{ errorCode?: unknown }> } };
  const own = [e.apiCode, e.response?.errorCode, ...(e.response?.members ?? []).map((m) => m.errorCode)].filter((c): c is number => typeof c === 'number' && c !== 0);
  return [...own, ...(e.errors ?? []).flatMap((x) => errorCodes(x, depth + 1)), ...errorCodes(e.cause, depth + 1)];
}
