import { describe, expect, it } from 'vitest';
import { decideResumePosition, type ResumeSources } from '../../consumers/resume-position.js';

/**
 * A fake log and table: `log` maps offsets to record contents (what Kafka holds now), `table`
 * lists the [offset, content] rows the table holds for the topic-partition (several incarnations).
 */
function sources(log: { earliest: number; records: Map<number, string> }, table: Array<[number, string]>): ResumeSources & { compared: number[] } {
  const latest = Math.max(log.earliest, ...[...log.records.keys()].map((o) => o + 1));
  const compared: number[] = [];
  return {
    compared,
    logBounds: async () => ({ earliest: log.earliest, latest }),
    highestStoredOffset: async (from, to) => {
      const inRange = table.map(([o]) => o).filter((o) => o >= from && o < to);
      return inRange.length ? Math.max(...inRange) : undefined;
    },
    storedRowIsLogRecord: async (offset) => {
      compared.push(offset);
      const record = log.records.get(offset);
      return record !== undefined && table.some(([o, c]) => o === offset && c === record);
    },
  };
}

const records = (from: number, to: number, tag: string) => new Map<number, string>(Array.from({ length: to - from }, (_, i) => [from + i, `${tag}${from + i}`] as const));
const rows = (from: number, to: number, tag: string): Array<[number, string]> => Array.from({ length: to - from }, (_, i) => [from + i, `${tag}${from + i}`]);

describe('decideResumePosition', () => {
  it('resumes after the last row of the same log', async () => {
    const s = sources({ earliest: 0, records: records(0, 150, 'a') }, rows(0, 100, 'a'));
    expect(await decideResumePosition(s)).toBe(100);
    expect(s.compared).toEqual([99]);
  });

  it('resumes at the log end when the table holds the whole log', async () => {
    expect(await decideResumePosition(sources({ earliest: 0, records: records(0, 100, 'a') }, rows(0, 100, 'a')))).toBe(100);
  });

  it('starts at the log start when the table holds no row of the topic-partition', async () => {
    expect(await decideResumePosition(sources({ earliest: 0, records: records(0, 10, 'a') }, []))).toBe(0);
  });

  it('starts at the log start when retention deleted every record the table holds and more', async () => {
    const s = sources({ earliest: 500, records: records(500, 600, 'a') }, rows(0, 300, 'a'));
    expect(await decideResumePosition(s)).toBe(500);
    expect(s.compared).toEqual([]);
  });

  it('starts at the log start of a recreated topic shorter than the old log (old rows reach past its end)', async () => {
    const s = sources({ earliest: 0, records: records(0, 40, 'b') }, rows(0, 1_000, 'a'));
    expect(await decideResumePosition(s)).toBe(0);
    expect(s.compared).toEqual([39]); // the highest old row inside the new log's offsets: not its record
  });

  it('starts at the log start of a recreated topic longer than the old log', async () => {
    expect(await decideResumePosition(sources({ earliest: 0, records: records(0, 5_000, 'b') }, rows(0, 1_000, 'a')))).toBe(0);
  });

  it('resumes after the new log rows once they reach past the old ones', async () => {
    expect(await decideResumePosition(sources({ earliest: 0, records: records(0, 5_000, 'b') }, [...rows(0, 1_000, 'a'), ...rows(0, 1_200, 'b')]))).toBe(1_200);
  });

  it('re-reads (log start) rather than skip when the new log rows are hidden below older ones', async () => {
    // The rare case the design accepts: duplicates, never a skipped record.
    expect(await decideResumePosition(sources({ earliest: 0, records: records(0, 5_000, 'b') }, [...rows(0, 1_000, 'a'), ...rows(0, 300, 'b')]))).toBe(0);
  });

  it('starts at the log start when the log holds another record (or poison) at the highest row', async () => {
    const log = { earliest: 0, records: records(0, 100, 'a') };
    log.records.set(99, 'poison');
    expect(await decideResumePosition(sources(log, rows(0, 100, 'a')))).toBe(0);
  });

  it('an empty log starts at its start without reading the table', async () => {
    const s = sources({ earliest: 7, records: new Map() }, rows(0, 7, 'a'));
    expect(await decideResumePosition(s)).toBe(7);
    expect(s.compared).toEqual([]);
  });

  it('a failed read throws (the caller retries; falling back to the log start would duplicate)', async () => {
    const s = sources({ earliest: 0, records: records(0, 10, 'a') }, rows(0, 10, 'a'));
    s.storedRowIsLogRecord = async () => {
      throw new Error('ClickHouse unreachable');
    };
    await expect(decideResumePosition(s)).rejects.toThrow('ClickHouse unreachable');
  });
});

