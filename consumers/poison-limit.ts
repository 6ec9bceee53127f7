/**
 * Stops a topic instead of dead-lettering it whole. Like arroyo's DlqLimit, but per topic (a
 * new-schema producer on a quiet topic is not drowned by the good messages of busy ones), it
 * counts the rows ClickHouse refuses at insert time as well as the messages refused at decode,
 * and it pauses the topic with backoff instead of crashing the worker: Kafka holds the messages
 * meanwhile, and the other topics keep flowing.
 *
 * Two ways to be stopped, both reported through `onChange` (a gauge, and one log line each):
 *  - `poison_share`: more than `maxRatio` of a window of `window` messages of the topic were
 *    poison (a bad producer deploy; a producer on a schema no worker knows yet). While stopped,
 *    the decode stage holds the topic's next poison message (backpressure) rather than
 *    dead-letter it; good messages before it still land. After the pause one poison message is
 *    let through as a probe, then the topic is held again for twice as long (up to `maxPauseMs`).
 *    A full window within the ratio ends the stop.
 *  - `table_refusing`: the insert stage found every part of a batch refused as data (a retyped
 *    column; see InsertStage.bisect). The batch waits `pauseMs(topic)` and is tried again whole;
 *    `recovered` ends the stop when an insert of the topic lands.
 *
 * No I/O; time comes from the clock passed in, so the whole policy is unit-tested without sleeps.
 */
export type StopCause = 'poison_share' | 'table_refusing';

export interface PoisonLimitPolicy {
  /** Largest share of poison in a window before the topic stops (0..1). */
  maxRatio: number;
  /** Messages per window. */
  window: number;
  /** First pause of a stopped topic; doubles with each failed probe. */
  initialPauseMs: number;
  maxPauseMs: number;
}

interface TopicState {
  seen: number;
  poison: number;
  stop: StopCause | undefined;
  /** Poison held until then (poison_share). */
  heldUntil: number;
  /** Next pause length. */
  pauseMs: number;
}

export class PoisonLimit {
  private readonly topics = new Map<string, TopicState>();

  constructor(
    private readonly policy: PoisonLimitPolicy,
    private readonly clock: () => number = Date.now,
    /** Called when a topic stops or resumes (cause undefined), e.g. to set a gauge and log. */
    private readonly onChange: (topic: string, cause: StopCause | undefined, previous: StopCause | undefined, detail: string) => void = () => undefined,
  ) {}

  /** Why `topic` is stopped, or undefined. */
  stopped(topic: string): StopCause | undefined {
    return this.topics.get(topic)?.stop;
  }

  /** How long `topic`'s poison is still held (0 when admitPoison would let the next one through). */
  heldForMs(topic: string): number {
    const s = this.topics.get(topic);
    return s?.stop === 'poison_share' ? Math.max(0, s.heldUntil - this.clock()) : 0;
  }

  /** Counts `n` messages of `topic` that were not poison. */
  good(topic: string, n = 1): void {
    const s = this.state(topic);
    s.seen += n;
    if (s.seen >= this.policy.window) this.closeWindow(topic, s);
  }

  /**
   * Asked before a poison message (or a row ClickHouse refused) of `topic` is dead-lettered.
   * True: dead-letter it (and it is counted). False: the topic's poison share is over the limit;
   * hold the message (MessageRejected: nothing committed) and ask again later.
   */
  admitPoison(topic: string): boolean {
    const s = this.state(topic);
    const now = this.clock();
    if (s.stop === 'poison_share') {
      if (now < s.heldUntil) return false;
      // The probe: one letter, then hold again for longer.
      s.heldUntil = now + s.pauseMs;
      s.pauseMs = Math.min(this.policy.maxPauseMs, s.pauseMs * 2);
      this.count(topic, s);
      return true;
    }
    if (s.poison + 1 > this.policy.maxRatio * this.policy.window) {
      // This letter would take the window over the ratio whatever the rest of it holds.
      const detail = `more than ${this.policy.maxRatio} of ${this.policy.window} messages of ${topic} are poison (deadLetter.maxPoisonRatio / deadLetter.poisonWindow): holding its poison messages in Kafka instead of dead-lettering the topic; the topic's next poison message is tried again in ${s.pauseMs} ms`;
      this.setStop(topic, s, 'poison_share', detail);
      s.heldUntil = now + s.pauseMs;
      s.pauseMs = Math.min(this.policy.maxPauseMs, s.pauseMs * 2);
      return false;
    }
    this.count(topic, s);
    return true;
  }

  /**
   * The insert stage found `topic`'s table refusing every row: stops the topic and returns how
   * long to wait before the next probe (doubling up to maxPauseMs while it keeps refusing).
   */
  tableRefusing(topic: string, detail: string): number {
    const s = this.state(topic);
    const pause = s.stop === 'table_refusing' ? s.pauseMs : this.policy.initialPauseMs;
    this.setStop(topic, s, 'table_refusing', `${detail}; trying again in ${pause} ms`);
    s.pauseMs = Math.min(this.policy.maxPauseMs, pause * 2);
    return pause;
  }

  /** An insert into `topic`'s table landed: a table_refusing stop is over. */
  recovered(topic: string): void {
    const s = this.topics.get(topic);
    if (s?.stop === 'table_refusing') this.setStop(topic, s, undefined, 'the table accepts rows again');
  }

  private count(topic: string, s: TopicState): void {
    s.poison++;
    s.seen++;
    if (s.seen >= this.policy.window) this.closeWindow(topic, s);
  }

  private closeWindow(topic: string, s: TopicState): void {
    if (s.stop === 'poison_share' && s.poison <= this.policy.maxRatio * s.seen) {
      this.setStop(topic, s, undefined, `a window of ${s.seen} messages within the poison ratio`);
    }
    s.seen = 0;
    s.poison = 0;
  }

  private setStop(topic: string, s: TopicState, cause: StopCause | undefined, detail: string): void {
    const previous = s.stop;
    if (cause === undefined) s.pauseMs = this.policy.initialPauseMs;
    if (previous === cause) return;
    s.stop = cause;
    this.onChange(topic, cause, previous, detail);
  }

  private state(topic: string): TopicState {
    let s = this.topics.get(topic);
    if (!s) {
      s = { seen: 0, poison: 0, stop: undefined, heldUntil: 0, pauseMs: this.policy.initialPauseMs };
      this.topics.set(topic, s);
    }
    return s;
  }
}
