import { describe, expect, it } from 'vitest';
import { MultipleErrors, ResponseError } from '@platformatic/kafka';
import { CrashedMemberRemoval, errorCodes, leavePreviousRun, previousRunMembers } from '../../consumers/crashed-member.js';
import { recordingLog } from '../helpers/recording-log.js';

describe('CrashedMemberRemoval: which member id is removed, and when the removal stops', () => {
  function recorder() {
    const calls: Array<{ memberId: string; signal: AbortSignal }> = [];
    const removal = new CrashedMemberRemoval(async (memberId, signal) => {
      calls.push({ memberId, signal });
    });
    return { calls, removal };
  }

  it('a crash removes the id of the generation the consumer had joined, once', () => {
    const { calls, removal } = recorder();
    removal.joined('m-1');
    removal.joined('m-2');
    removal.crashed();
    removal.crashed(); // kafkajs crashed again before joining: no id to remove any more
    expect(calls.map((c) => c.memberId)).toEqual(['m-2']);
  });

  it('joining again, or stopping, aborts a removal still trying', () => {
    const { calls, removal } = recorder();
    removal.joined('m-1');
    removal.crashed();
    expect(calls[0]!.signal.aborted).toBe(false);
    removal.joined('m-3');
    expect(calls[0]!.signal.aborted).toBe(true);
    removal.crashed();
    removal.stop();
    expect(calls[1]!.memberId).toBe('m-3');
    expect(calls[1]!.signal.aborted).toBe(true);
  });

  it('a crash before any join removes nothing', () => {
    const { calls, removal } = recorder();
    removal.crashed();
    expect(calls).toEqual([]);
  });
});

describe("previousRunMembers and leavePreviousRun: a restarted instance removes its own previous run's members, and nobody else's", () => {
  const member = (memberId: string, clientId: string) => ({ memberId, clientId, clientHost: '/10.0.0.7' });

  it('selects the members under its own client id only (another instance, or a worker without an instance id, stays)', () => {
    const group = [member('ingest-pod-a-1', 'ingest-pod-a'), member('ingest-pod-ab-2', 'ingest-pod-ab'), member('ingest-3', 'ingest'), member('ingest-pod-a-4', 'ingest-pod-a'), member('x', 'other-pod-a')];
    expect(previousRunMembers(group, 'ingest-pod-a').map((m) => m.memberId)).toEqual(['ingest-pod-a-1', 'ingest-pod-a-4']);
    expect(previousRunMembers(group, 'ingest-pod-c')).toEqual([]);
  });

  it('a removal that fails or does not answer in time never fails the start: it is logged and the start goes on', async () => {
    const { log, lines } = recordingLog();
    await leavePreviousRun({ removePreviousRun: async () => Promise.reject(new Error('coordinator not available')) }, 'ingest-pod-a', 1_000, log);
    // No answer: the start goes on at the bound, and the removal's own retries are told to stop.
    let signal: AbortSignal | undefined;
    const t0 = Date.now();
    await leavePreviousRun({ removePreviousRun: (_clientId, s) => ((signal = s), new Promise(() => undefined)) }, 'ingest-pod-a', 50, log);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(signal?.aborted).toBe(true);
    await leavePreviousRun({ removePreviousRun: async () => [member('ingest-pod-a-1', 'ingest-pod-a')] }, 'ingest-pod-a', 1_000, log);
    expect(lines.map(([level, msg]) => `${level}: ${msg}`)).toEqual([
      "warn: could not remove the previous run's members of this worker instance from the group; they leave when their sessions expire",
      "warn: could not remove the previous run's members of this worker instance from the group; they leave when their sessions expire",
      "info: removed the previous run's members of this worker instance from the group",
    ]);
    expect(String((lines[1]![2]!.err as Error).message)).toBe('no answer within 50 ms');
  });
});

describe('errorCodes: the Kafka codes of a platformatic error', () => {
  it("a LeaveGroup whose member is gone already (25 at the member, 0 at the top) is 25 alone, as the admin client wraps it", () => {
    const response = { throttleTimeMs: 0, errorCode: 0, members: [{ memberId: 'ingest-pod-a-1', groupInstanceId: null, errorCode: 25 }] };
    const leave = new ResponseError(13, 5, { '/members/0': [25, null] }, response);
    expect(errorCodes(new MultipleErrors('Removing members from consumer group failed.', [leave]))).toEqual(expect.arrayContaining([25]));
    expect(errorCodes(new MultipleErrors('Removing members from consumer group failed.', [leave])).every((c) => c === 25)).toBe(true);
    // A coordinator that is not there yet, at the top.
    const coordinator = new ResponseError(10, 6, { '': [15, null] }, { throttleTimeMs: 0, errorCode: 15 });
    expect(errorCodes(coordinator)).toContain(15);
  });
});
