import { agentActions } from './schemas/agent-actions.js';
import { codeLineages } from './schemas/code-lineages.js';
import type { EventInput, EventRecord, EventType } from './schemas/event-type.js';
import { evolutionRuns } from './schemas/evolution-runs.js';
import { generations } from './schemas/generations.js';
import { individuals } from './schemas/individuals.js';
import { llmLogs } from './schemas/llm-logs.js';
import { paretoFronts } from './schemas/pareto-fronts.js';
import { EventValidationError } from './schemas/validate-event.js';
import { EventProducer, type ProducerOptions } from './event-producer.js';

/** What the logger needs of an EventProducer (a fake one in unit tests). */
export type EventSink = Pick<EventProducer, 'emit' | 'flush' | 'close'>;

type Time = number | Date | string;

export interface LogEvolutionRunInput {
  run_id: string;
  task_name: string;
  /** Hydra config; objects are stored as JSON text. */
  config: unknown;
  population_size: number;
  cluster_type: string;
  database_path: string;
  /** Default: now. */
  start_time?: Time;
  /** Default 'running'. */
  status?: string;
}

export interface UpdateEvolutionRunInput {
  run_id: string;
  status: string;
  total_generations: number;
  /** Default: now when status is "completed" or "failed", else unchanged. */
  end_time?: Time;
}

/**
 * Input of a log… call for event type E: JSON fields take any JSON-serialisable value,
 * `timestamp` takes epoch ms, a Date or an ISO string, and the keys in Opt may be left out
 * (auto-filled or with a schema default).
 */
type LogInput<E extends EventType, Json extends string, Opt extends string> = {
  [K in keyof EventRecord<E> as K extends Opt ? never : K]: FieldInput<E, K, Json>;
} & {
  [K in keyof EventRecord<E> as K extends Opt ? K : never]?: FieldInput<E, K, Json>;
};
type FieldInput<E extends EventType, K, Json extends string> = K extends Json ? unknown : K extends 'timestamp' ? Time : EventRecord<E>[K & keyof EventRecord<E>];

export type LogGenerationInput = LogInput<typeof generations, 'metadata', 'timestamp' | 'task_name' | 'metadata'>;
export type LogIndividualInput = LogInput<
  typeof individuals,
  'metrics',
  'timestamp' | 'parent_id' | 'metrics' | 'is_pareto' | 'api_cost' | 'embed_cost' | 'novelty_cost' | 'code_hash' | 'code_size'
>;
export type LogLineageInput = LogInput<typeof codeLineages, never, 'timestamp' | 'parent_id' | 'edit_summary'>;
export type LogLlmInteractionInput = LogInput<typeof llmLogs, 'messages' | 'metadata', 'id' | 'timestamp' | 'metadata' | 'run_id'>;
export type LogAgentActionInput = LogInput<typeof agentActions, 'details' | 'metadata', 'id' | 'timestamp' | 'details' | 'metadata' | 'run_id'>;

export interface ParetoFrontMemberInput {
  individual_id: string;
  fitness_score: number;
  combined_score: number;
  metrics?: unknown;
}

export interface LogParetoFrontInput {
  run_id: string;
  generation: number;
  /** Default: now. One timestamp for the whole snapshot. */
  timestamp?: Time;
  members: readonly ParetoFrontMemberInput[];
}

const FINAL_STATUSES = new Set(['completed', 'failed']);

/**
 * The evolution-tracking SDK (evolution-tables.md, `ch_logger`), in camelCase with one object
 * per call. Each method validates its event(s) and resolves when Kafka acknowledged them; a bad
 * value rejects with an EventValidationError naming the event type and field, and nothing is sent.
 * Events of one run share the Kafka key `run_id`, so they are stored in the order they were logged
 * (which is what makes a run's later update win over its start).
 */
export class EvolutionLogger {
  /** task_name per run_id, remembered from logEvolutionRun so logGeneration can fill it. */
  private readonly taskNames = new Map<string, string>();

  constructor(readonly events: EventSink) {}

  static async connect(opts: ProducerOptions = {}): Promise<EvolutionLogger> {
    return new EvolutionLogger(await EventProducer.connect(opts));
  }

  /** Start of a run: status "running" unless given, total_generations 0. */
  async logEvolutionRun(input: LogEvolutionRunInput): Promise<void> {
    const { start_time, status, config, ...rest } = input;
    const sent = this.emit(evolutionRuns, [
      {
        ...rest,
        start_time: toMs(evolutionRuns, 'start_time', start_time ?? Date.now()),
        config: toJson(evolutionRuns, 'config', config),
        status: status ?? 'running',
        total_generations: 0,
        end_time: null,
      },
    ]);
    if (typeof input.task_name === 'string') this.taskNames.set(input.run_id, input.task_name);
    await sent;
  }

  /** Status change of a run; only status, total_generations and end_time are written, the rest is unchanged. */
  async updateEvolutionRun(input: UpdateEvolutionRunInput): Promise<void> {
    const endTime = input.end_time ?? (FINAL_STATUSES.has(input.status) ? Date.now() : undefined);
    return this.emit(evolutionRuns, [
      {
        run_id: input.run_id,
        status: input.status,
        total_generations: input.total_generations,
        end_time: endTime === undefined ? null : toMs(evolutionRuns, 'end_time', endTime),
        start_time: null,
        task_name: null,
        config: null,
        population_size: null,
        cluster_type: null,
        database_path: null,
      },
    ]);
  }

  /** Statistics of one generation; task_name defaults to the one logged for the run (or ""). */
  async logGeneration(input: LogGenerationInput): Promise<void> {
    return this.emit(generations, [{ ...input, task_name: input.task_name ?? this.taskNames.get(input.run_id) ?? '' }]);
  }

  async logIndividual(input: LogIndividualInput): Promise<void> {
    return this.emit(individuals, [input]);
  }

  /** One row per front member, all with the same run, generation and timestamp. */
  async logParetoFront(input: LogParetoFrontInput): Promise<void> {
    if (!Array.isArray(input?.members)) throw new EventValidationError(paretoFronts.name, 'members', 'expected an array of front members');
    const timestamp = input.timestamp ?? Date.now();
    return this.emit(
      paretoFronts,
      input.members.map((m) => ({ ...m, run_id: input.run_id, generation: input.generation, timestamp })),
    );
  }

  async logLineage(input: LogLineageInput): Promise<void> {
    return this.emit(codeLineages, [input]);
  }

  async logLlmInteraction(input: LogLlmInteractionInput): Promise<void> {
    return this.emit(llmLogs, [input]);
  }

  async logAgentAction(input: LogAgentActionInput): Promise<void> {
    return this.emit(agentActions, [input]);
  }

  flush(): Promise<void> {
    return this.events.flush();
  }

  close(): Promise<void> {
    return this.events.close();
  }

  private emit<E extends EventType>(type: E, events: readonly unknown[]): Promise<void> {
    return this.events.emit(type, events as readonly EventInput<E>[]);
  }
}

function toMs(type: EventType, field: string, value: Time): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new EventValidationError(type.name, field, `expected a timestamp (epoch ms, Date or ISO string), got ${String(value)}`);
  return Math.round(ms);
}

function toJson(type: EventType, field: string, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') {
    try {
      JSON.parse(value);
    } catch {
      throw new EventValidationError(type.name, field, 'expected JSON text or an object, got a string that is not JSON');
    }
    return value;
  }
  try {
    const text = JSON.stringify(value);
    if (text === undefined) throw new Error(`${typeof value} is not JSON-serialisable`);
    return text;
  } catch (err) {
    throw new EventValidationError(type.name, field, `cannot be serialised to JSON: ${(err as Error).message}`);
  }
}
