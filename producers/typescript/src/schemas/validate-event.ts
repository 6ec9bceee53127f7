import { randomUUID } from 'node:crypto';
import type { AvroSchema } from './avro-types.js';
import type { EventType } from './event-type.js';

/** Bad input to an `emit…`/`log…` call, or a decoded event with values the tables cannot hold. */
export class EventValidationError extends Error {
  override readonly name = 'EventValidationError';
  constructor(
    readonly eventType: string,
    readonly field: string,
    readonly reason: string,
    readonly index?: number,
  ) {
    super(`${eventType}${index === undefined ? '' : `[${index}]`}.${field}: ${reason}`);
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/**
 * Turns SDK input into the Avro datum of `type`: fills auto fields, converts
 * timestamps to epoch ms and JSON fields to strings, and checks every value.
 * Throws EventValidationError naming the event type, the item index and the field.
 */
export function toEventRecord(type: EventType, input: unknown, index?: number, now = Date.now()): Record<string, unknown> {
  let convert = inputConverters.get(type);
  if (convert === undefined) inputConverters.set(type, (convert = compileInputConverter(type)));
  return convert ? convert(input, index, now) : convertInput(type, input, index, now);
}

/**
 * toEventRecord, field by field from the schema: the reference every compiled converter falls
 * back to, and the one that words the errors.
 */
export function convertInput(type: EventType, input: unknown, index: number | undefined, now: number): Record<string, unknown> {
  // No closure per event or field (but for JSON fields).
  if (input === null || typeof input !== 'object' || Array.isArray(input)) invalid(type, '(event)', `expected an object, got ${describe(input)}`, index);
  const given = input as Record<string, unknown>;
  const known = knownFields(type);
  for (const key in given) {
    if (Object.hasOwn(given, key) && !known.has(key)) invalid(type, key, `unknown field (known fields: ${type.fieldNames.join(', ')})`, index);
  }
  const record: Record<string, unknown> = {};
  for (const field of type.schema.fields) {
    let value = given[field.name];
    const auto = type.autoFields?.[field.name as never] as 'now' | 'uuid' | undefined;
    if (value === undefined || (value === null && auto)) {
      if (auto === 'now') value = now;
      else if (auto === 'uuid') value = randomUUID();
      else if (field.default !== undefined) value = field.default;
      else if (isNullable(field.type)) value = null;
      else invalid(type, field.name, 'is required', index);
    }
    if (field.name === type.timestampField) {
      const ms = toEpochMs(value);
      if (typeof ms === 'string') invalid(type, field.name, ms, index);
      value = ms;
    }
    // A nullable JSON field left null stays null (an update that does not touch it).
    if (type.jsonFields?.includes(field.name as never) && !(value === null && isNullable(field.type))) value = toJsonString(value, (r) => invalid(type, field.name, r, index));
    const reason = checkValue(field.type, value) ?? boundsViolation(type, field.name, value);
    if (reason !== undefined) invalid(type, field.name, reason, index);
    record[field.name] = value;
  }
  return record;
}

type InputConverter = (input: unknown, index: number | undefined, now: number) => Record<string, unknown>;

const inputConverters = new WeakMap<EventType, InputConverter | null>();

/**
 * The SDK converts every event it sends, so the common case is compiled per event type: code
 * that reads each field once, checks it inline and builds the record as one object literal (a
 * fixed shape, instead of a property added per field). It accepts only what it is sure of:
 * numbers as timestamps, values already of their Avro type, strings already JSON text. Anything
 * else (a Date or an ISO string, an object for a JSON field, a missing required field, any
 * invalid value) goes to convertInput, which converts it or words the error, so the result and
 * every error are exactly convertInput's. Null when the schema has a type this does not compile.
 */
function compileInputConverter(type: EventType): InputConverter | null {
  const lines: string[] = [];
  const names: string[] = [];
  for (const [i, field] of type.schema.fields.entries()) {
    const v = `v${i}`;
    const key = JSON.stringify(field.name);
    names.push(`${key}: ${v}`);
    const nullable = isNullable(field.type);
    const branch = Array.isArray(field.type) ? (field.type.length === 2 && nullable ? field.type.find((t) => t !== 'null') : undefined) : field.type;
    if (branch === undefined) return null;
    const { base, logical } = typeParts(branch as AvroSchema);
    // The logical types the schemas use; anything else keeps the reference path.
    if (typeof base !== 'string' || (logical !== undefined && !(base === 'string' && logical === 'uuid') && !(base === 'long' && logical === 'timestamp-millis'))) return null;
    const auto = type.autoFields?.[field.name as never] as 'now' | 'uuid' | undefined;
    lines.push(`let ${v} = given[${key}];`);
    const missing = auto ? `${v} === undefined || ${v} === null` : `${v} === undefined`;
    if (auto === 'now') lines.push(`if (${missing}) ${v} = now;`);
    else if (auto === 'uuid') lines.push(`if (${missing}) ${v} = randomUUID();`);
    else if (field.default !== undefined) lines.push(`if (${missing}) ${v} = defaults[${i}];`);
    else if (nullable) lines.push(`if (${missing}) ${v} = null;`);
    else lines.push(`if (${missing}) return slow(input, index, now);`);
    if (field.name === type.timestampField) lines.push(`if (typeof ${v} !== 'number' || !Number.isFinite(${v})) return slow(input, index, now); ${v} = Math.round(${v});`);
    const isJson = (type.jsonFields as readonly string[] | undefined)?.includes(field.name) ?? false;
    if (isJson) {
      // JSON text is kept as given when it parses; anything else takes the reference path.
      lines.push(`if (${nullable ? `${v} !== null && ` : ''}(typeof ${v} !== 'string' || !isJsonText(${v}))) return slow(input, index, now);`);
    }
    const checks: string[] = [];
    switch (base) {
      case 'string':
        checks.push(`typeof ${v} !== 'string'`);
        if (logical === 'uuid') checks.push(`!UUID_RE.test(${v})`);
        break;
      case 'boolean':
        checks.push(`typeof ${v} !== 'boolean'`);
        break;
      case 'double':
      case 'float':
        checks.push(`typeof ${v} !== 'number'`, `!Number.isFinite(${v})`);
        break;
      case 'int':
        checks.push(`typeof ${v} !== 'number'`, `!Number.isInteger(${v})`, `${v} < ${INT_MIN}`, `${v} > ${INT_MAX}`);
        break;
      case 'long':
        checks.push(`typeof ${v} !== 'number'`, `!Number.isSafeInteger(${v})`);
        if (logical === 'timestamp-millis') checks.push(`${v} < 0`);
        break;
      case 'null':
        checks.push(`${v} !== null`);
        break;
      default:
        return null;
    }
    const bounds = type.bounds?.[field.name];
    if (bounds) checks.push(`(typeof ${v} === 'number' && (${v} < ${bounds[0]} || ${v} > ${bounds[1]}))`);
    const bad = checks.join(' || ');
    lines.push(nullable ? `if (${v} !== null && (${bad})) return slow(input, index, now);` : `if (${bad}) return slow(input, index, now);`);
  }
  const body = `
    return function convert(input, index, now) {
      if (input === null || typeof input !== 'object' || Array.isArray(input)) return slow(input, index, now);
      const given = input;
      for (const k in given) if (!known.has(k) && Object.hasOwn(given, k)) return slow(input, index, now);
      ${lines.join('\n      ')}
      return { ${names.join(', ')} };
    }
    //# sourceURL=generated:producers/typescript/src/schemas/validate-event.ts/${type.name}`;
  const defaults = type.schema.fields.map((f) => f.default);
  const slow = (input: unknown, index: number | undefined, now: number) => convertInput(type, input, index, now);
  return new Function('slow', 'known', 'defaults', 'randomUUID', 'UUID_RE', 'isJsonText', body)(slow, knownFields(type), defaults, randomUUID, UUID_RE, isJsonText) as InputConverter;
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function invalid(type: EventType, field: string, reason: string, index: number | undefined): never {
  throw new EventValidationError(type.name, field, reason, index);
}

const knownFieldSets = new WeakMap<EventType, ReadonlySet<string>>();

function knownFields(type: EventType): ReadonlySet<string> {
  let set = knownFieldSets.get(type);
  if (!set) knownFieldSets.set(type, (set = new Set(type.fieldNames)));
  return set;
}

/**
 * Checks a record decoded from Avro for values its schema type allows but the tables must not
 * take: NaN and ±Infinity in doubles, malformed UUIDs, negative timestamps, out-of-bounds flags.
 * Avro decoding already guarantees every other type (a string is a string, an int fits 32 bits),
 * so only these checks run, compiled once per event type: this is on the worker's hot path.
 * Throws EventValidationError naming the field; the worker dead-letters such events.
 */
export function checkEventRecord(type: EventType, record: Record<string, unknown>): void {
  let check = decodedCheckers.get(type);
  if (!check) {
    check = compileDecodedChecker(type);
    decodedCheckers.set(type, check);
  }
  check(record);
}

const decodedCheckers = new WeakMap<EventType, (record: Record<string, unknown>) => void>();

function compileDecodedChecker(type: EventType): (record: Record<string, unknown>) => void {
  const checks: Array<(record: Record<string, unknown>) => void> = [];
  for (const field of type.schema.fields) {
    const name = field.name;
    const fail = (reason: string): never => {
      throw new EventValidationError(type.name, name, reason);
    };
    const branch = Array.isArray(field.type) ? field.type.find((t) => t !== 'null') : field.type;
    if (branch === undefined) continue;
    const bounds = type.bounds?.[name];
    const { base, logical } = typeParts(branch as AvroSchema);
    const needsFinite = base === 'double' || base === 'float';
    if (!needsFinite && !bounds && logical !== 'uuid' && logical !== 'timestamp-millis') continue;
    checks.push((record) => {
      const value = record[name];
      if (value === null || value === undefined) return;
      if (needsFinite && !Number.isFinite(value)) fail(`expected a finite number, got ${describe(value)}`);
      if (logical === 'uuid' && !UUID_RE.test(value as string)) fail(`expected a UUID, got ${describe(value)}`);
      if (logical === 'timestamp-millis' && (value as number) < 0) fail(`expected a time at or after 1970-01-01, got ${describe(value)}`);
      if (bounds && ((value as number) < bounds[0] || (value as number) > bounds[1])) fail(`expected a value from ${bounds[0]} to ${bounds[1]}, got ${describe(value)}`);
    });
  }
  return (record) => {
    for (const check of checks) check(record);
  };
}

/** Why `value` does not fit `schema`, or undefined when it does. */
function checkValue(schema: AvroSchema, value: unknown): string | undefined {
  if (Array.isArray(schema)) {
    if (value === null && schema.includes('null')) return undefined;
    const branch = schema.find((s) => s !== 'null');
    if (branch === undefined) return 'expected null';
    return checkValue(branch as AvroSchema, value);
  }
  if (typeof schema === 'object' && 'logicalType' in schema) {
    const reason = checkValue(schema.type, value);
    if (reason !== undefined) return reason;
    if (schema.logicalType === 'uuid' && !UUID_RE.test(value as string)) return `expected a UUID, got ${describe(value)}`;
    if (schema.logicalType === 'timestamp-millis' && (value as number) < 0) return `expected a time at or after 1970-01-01, got ${describe(value)}`;
    return undefined;
  }
  switch (schema) {
    case 'string':
      return typeof value !== 'string' ? `expected a string, got ${describe(value)}` : undefined;
    case 'boolean':
      return typeof value !== 'boolean' ? `expected a boolean, got ${describe(value)}` : undefined;
    case 'double':
    case 'float':
      return typeof value !== 'number' || !Number.isFinite(value) ? `expected a finite number, got ${describe(value)}` : undefined;
    case 'int':
      return typeof value !== 'number' || !Number.isInteger(value) || value < INT_MIN || value > INT_MAX ? `expected a 32-bit integer, got ${describe(value)}` : undefined;
    case 'long':
      return typeof value !== 'number' || !Number.isSafeInteger(value) ? `expected an integer, got ${describe(value)}` : undefined;
    case 'null':
      return value !== null ? `expected null, got ${describe(value)}` : undefined;
    default:
      return `unsupported schema type ${JSON.stringify(schema)}`;
  }
}

function boundsViolation(type: EventType, field: string, value: unknown): string | undefined {
  const bounds = type.bounds?.[field];
  if (bounds && typeof value === 'number' && (value < bounds[0] || value > bounds[1])) return `expected a value from ${bounds[0]} to ${bounds[1]}, got ${value}`;
  return undefined;
}

/** A non-union schema as its Avro base type and its logical type, if any. */
function typeParts(schema: AvroSchema): { base: AvroSchema; logical: string | undefined } {
  return typeof schema === 'object' && 'logicalType' in schema ? { base: schema.type, logical: schema.logicalType } : { base: schema, logical: undefined };
}

function isNullable(schema: AvroSchema): boolean {
  return Array.isArray(schema) && schema.includes('null');
}

/** Epoch ms of an SDK timestamp (epoch ms, Date or ISO string), or why it is not one. */
function toEpochMs(value: unknown): number | string {
  if (value instanceof Date) value = value.getTime();
  else if (typeof value === 'string') {
    const parsed = Date.parse(value);
    if (Number.isNaN(parsed)) return `expected a timestamp, got unparseable string ${describe(value)}`;
    value = parsed;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return `expected a timestamp (epoch ms, Date or ISO string), got ${describe(value)}`;
  return Math.round(value);
}

function toJsonString(value: unknown, fail: (reason: string) => never): string {
  if (typeof value === 'string') {
    try {
      JSON.parse(value);
    } catch {
      fail(`expected JSON text or an object, got a string that is not JSON: ${describe(value)}`);
    }
    return value;
  }
  try {
    const text = JSON.stringify(value);
    if (text === undefined) fail(`expected a JSON-serialisable value, got ${describe(value)}`);
    return text as string;
  } catch (err) {
    return fail(`cannot be serialised to JSON: ${(err as Error).message}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** 2000-01-01T00:00:00Z: no event of this pipeline is older; a smaller value is almost always seconds passed as milliseconds. */
export const MIN_PLAUSIBLE_TIME_MS = Date.UTC(2000, 0, 1);
/** How far ahead of the producer's clock an event time may be (clock skew between hosts), 1 day. */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

const timestampFieldLists = new WeakMap<EventType, readonly string[]>();

/**
 * Refuses event times the tables would mishandle: before 2000-01-01 (typically epoch seconds
 * given as milliseconds: 1.7e9 ms is January 1970) or more than a day after `now` (year 3000,
 * microseconds). The tables' TTL and partitioning key on these times, so such an event would be
 * deleted at once or land in a partition of its own. Every timestamp-millis field of the type
 * is checked. The SDK calls this at emit; the worker does not (it must take what older
 * producers wrote). Throws EventValidationError naming the field.
 */
export function checkTimestampsPlausible(type: EventType, record: Record<string, unknown>, index: number | undefined, now: number): void {
  let fields = timestampFieldLists.get(type);
  if (fields === undefined) {
    fields = type.schema.fields.filter((f) => isTimestampMillis(f.type)).map((f) => f.name);
    timestampFieldLists.set(type, fields);
  }
  for (const name of fields) {
    const value = record[name];
    if (typeof value !== 'number') continue;
    if (value < MIN_PLAUSIBLE_TIME_MS) invalid(type, name, `${value} is before 2000-01-01 (${new Date(value).toISOString()}); epoch seconds instead of milliseconds?`, index);
    if (value > now + MAX_FUTURE_SKEW_MS) invalid(type, name, `${value} (${Number.isFinite(new Date(value).getTime()) ? new Date(value).toISOString() : 'out of range'}) is more than a day ahead of now; microseconds instead of milliseconds, or a wrong clock?`, index);
  }
}

function isTimestampMillis(schema: AvroSchema): boolean {
  if (Array.isArray(schema)) return schema.some((s) => isTimestampMillis(s as AvroSchema));
  return typeof schema === 'object' && schema !== null && 'logicalType' in schema && schema.logicalType === 'timestamp-millis';
}
