import { readFileSync } from 'node:fs';

/** One instruction of a Dockerfile: `COPY --from=build /app/dist ./dist` → { keyword: 'COPY', flags: { from: 'build' }, args: [...] }. */
export interface DockerInstruction {
  keyword: string;
  /** --name=value flags before the arguments (COPY --from, HEALTHCHECK --interval, …). */
  flags: Record<string, string>;
  /** The rest: an exec-form JSON array parsed, or the shell form split on spaces. */
  args: string[];
  /** Exec form (a JSON array) rather than shell form. */
  exec: boolean;
  /** The stage it belongs to (FROM … AS name), '' before the first named stage. */
  stage: string;
}

/**
 * The instructions of a Dockerfile, enough for the checks of the tests (no Docker here): comment
 * lines dropped, `\` continuations joined, HEALTHCHECK's CMD parsed as the instruction's args.
 */
export function readDockerfile(path: string): DockerInstruction[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const joined: string[] = [];
  let current = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw)) continue; // also inside a continued instruction, as Docker does
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) joined.push(current.trim());
    current = '';
  }
  let stage = '';
  return joined.map((text) => {
    const [, keyword, rest] = /^(\S+)\s*(.*)$/.exec(text)!;
    let body = rest!;
    const flags: Record<string, string> = {};
    for (let m = /^--([a-z-]+)=(\S+)\s*/.exec(body); m; m = /^--([a-z-]+)=(\S+)\s*/.exec(body)) {
      flags[m[1]!] = m[2]!;
      body = body.slice(m[0].length);
    }
    if (keyword!.toUpperCase() === 'HEALTHCHECK') body = body.replace(/^CMD\s+/, '');
    const exec = body.startsWith('[');
    const args = exec ? (JSON.parse(body) as string[]) : body.split(/\s+/).filter(Boolean);
    const k = keyword!.toUpperCase();
    if (k === 'FROM') stage = /\bAS\s+(\S+)/i.exec(body)?.[1] ?? '';
    return { keyword: k, flags, args, exec, stage };
  });
}
