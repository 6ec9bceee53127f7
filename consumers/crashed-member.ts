import { Admin } from '@platformatic/kafka';
import type { Config } from '../lib/config.js';
import { platformaticClientOptions, type OAuthBearerProvider } from '../lib/kafka.js';

/**
 * Takes a crashed consumer's old member out of its group, so the consumer's restart is not
 * held up by it.
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

/**
 * A MemberRemover on @platformatic/kafka's admin client (kafkajs 2.2.4 has no LeaveGroup for
 * another member). It tries every `intervalMs` while the coordinator moves (a killed
 * coordinator's group is unavailable until Kafka elects another), until it succeeds, the member
 * is unknown, or `signal` aborts (the consumer joined again, or the worker stops).
 */
export function platformaticMemberRemover(config: Config['kafka'], groupId: string, oauthBearerProvider?: OAuthBearerProvider, intervalMs = 500): { remove: MemberRemover; close: () => Promise<void> } {
  let admin: Admin | undefined;
  const client = () =>
    (admin ??= new Admin({ ...platformaticClientOptions(config, 'member-removal', oauthBearerProvider), retries: 0 }));
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
    close: async () => {
      await admin?.close().catch(() => undefined);
    },
  };
}

/** Kafka error codes anywhere in a (nested) platformatic error. */
function errorCodes(err: unknown, depth = 0): number[] {
  if (!err || typeof err !== 'object' || depth > 5) return [];
  const e = err as { apiCode?: unknown; errors?: unknown[]; cause?: unknown; response?: { errorCode?: unknown; members?: Array<{ errorCode?: unknown }> } };
  const own = [e.apiCode, e.response?.errorCode, ...(e.response?.members ?? []).map((m) => m.errorCode)].filter((c): c is number => typeof c === 'number');
  return [...own, ...(e.errors ?? []).flatMap((x) => errorCodes(x, depth + 1)), ...errorCodes(e.cause, depth + 1)];
}
