import { describe, expect, it } from 'vitest';
import { TopicIds } from '../../consumers/topic-ids.js';

/** A reader whose reads the test answers one by one, recording when each was sent. */
function scriptedReader() {
  const sent: { topic: string; answer: (id: string | undefined) => void; fail: (err: Error) => void }[] = [];
  const read = (topic: string) =>
    new Promise<string | undefined>((answer, fail) => {
      sent.push({ topic, answer, fail });
    });
  return { sent, read };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('TopicIds', () => {
  it('answers a caller with a read sent after it asked, never with one already on the way', async () => {
    const { sent, read } = scriptedReader();
    const ids = new TopicIds(read);
    const first = ids.current('t');
    await tick();
    expect(sent).toHaveLength(1);
    // Asked while the first read is on the way: that read may predate the caller's insert.
    const second = ids.current('t');
    const third = ids.current('t');
    await tick();
    expect(sent).toHaveLength(1);
    sent[0]!.answer('old-id');
    expect(await first).toBe('old-id');
    await tick();
    // One read for both callers that waited together.
    expect(sent).toHaveLength(2);
    sent[1]!.answer('new-id');
    expect([await second, await third]).toEqual(['new-id', 'new-id']);
    // Nothing on the way any more: the next caller gets a read of its own at once.
    const fourth = ids.current('t');
    await tick();
    expect(sent).toHaveLength(3);
    sent[2]!.answer(undefined);
    expect(await fourth).toBeUndefined();
  });

  it('reads topics independently', async () => {
    const { sent, read } = scriptedReader();
    const ids = new TopicIds(read);
    const a = ids.current('a');
    const b = ids.current('b');
    await tick();
    expect(sent.map((s) => s.topic)).toEqual(['a', 'b']);
    sent[1]!.answer('id-b');
    sent[0]!.answer('id-a');
    expect([await a, await b]).toEqual(['id-a', 'id-b']);
  });

  it('passes a failed read to its callers, and the callers queued behind it still get a read', async () => {
    const { sent, read } = scriptedReader();
    const ids = new TopicIds(read);
    const first = ids.current('t');
    await tick();
    const queued = ids.current('t');
    sent[0]!.fail(new Error('broker down'));
    await expect(first).rejects.toThrow('broker down');
    await tick();
    expect(sent).toHaveLength(2);
    sent[1]!.answer('id');
    expect(await queued).toBe('id');
  });
});
