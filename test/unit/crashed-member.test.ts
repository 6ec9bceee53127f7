import { describe, expect, it } from 'vitest';
import { CrashedMemberRemoval } from '../../consumers/crashed-member.js';

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
