import { DockerfileError } from '../errors.js';

/**
 * Finds the base image of a Dockerfile's final stage the way the builder does: parser
 * directives, comments, line continuations, global `ARG`s (defaults, then `--build-arg`
 * overrides), `${VAR}` forms in `FROM`, `--platform`, and `FROM <stage>` chains.
 */
interface FinalBase {
  /** The image the final stage is built on; undefined for `FROM scratch` (every layer is new). */
  image?: string;
  /** The `--platform` of the FROM that names that image, after substitution. */
  platform?: string;
}

interface Instruction {
  keyword: string;
  args: string;
}

/** Splits a Dockerfile into instructions (keyword + raw argument text). */
function instructions(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  let i = 0;
  // Parser directives: only at the very top, before any other line (comments included).
  for (; i < lines.length; i++) {
    const directive = /^\s*#\s*([a-zA-Z][a-zA-Z0-9-]*)\s*=\s*(.*?)\s*$/.exec(lines[i]!);
    if (!directive) break;
    if (directive[1]!.toLowerCase() === 'escape') {
      if (directive[2] !== '\\' && directive[2] !== '`') throw new DockerfileError(`invalid escape directive '${directive[2]}'`);
      escape = directive[2]!;
    }
  }
  const result: Instruction[] = [];
  let current = '';
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*#/.test(line)) continue; // comments, also inside continuations
    if (current === '' && line.trim() === '') continue;
    const trimmedEnd = line.replace(/\s+$/, '');
    if (trimmedEnd.endsWith(escape)) {
      current += `${trimmedEnd.slice(0, -1)} `;
      continue;
    }
    current += line;
    const match = /^\s*(\S+)\s*(.*)$/s.exec(current);
    if (match) result.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
    current = '';
  }
  if (current.trim()) {
    const match = /^\s*(\S+)\s*(.*)$/s.exec(current);
    if (match) result.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
  }
  return result;
}

function unquote(value: string): string {
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) return value.slice(1, -1);
  return value;
}

/** Expands `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alternative}`. */
export function substitute(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced, op, word, bare) => {
    const name = (braced ?? bare) as string;
    const value = vars.get(name);
    if (op === ':-') return value ? value : substitute(word as string, vars);
    if (op === ':+') return value ? substitute(word as string, vars) : '';
    return value ?? '';
  });
}

/** `--build-arg` values as the builder takes them: `NAME=value`, or `NAME` from the environment. */
export function parseBuildArgs(values: string[], env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const args = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === -1) {
      const fromEnv = env[value];
      if (fromEnv !== undefined) args.set(value, fromEnv);
    } else {
      args.set(value.slice(0, eq), value.slice(eq + 1));
    }
  }
  return args;
}

export function finalBase(text: string, buildArgs: ReadonlyMap<string, string> = new Map()): FinalBase {
  const globals = new Map<string, string>();
  const stages = new Map<string, FinalBase>();
  let last: FinalBase | undefined;
  let seenFrom = false;
  for (const { keyword, args } of instructions(text)) {
    if (keyword === 'ARG' && !seenFrom) {
      for (const part of args.split(/\s+/).filter(Boolean)) {
        const eq = part.indexOf('=');
        const name = eq === -1 ? part : part.slice(0, eq);
        const fallback = eq === -1 ? undefined : unquote(part.slice(eq + 1));
        const value = buildArgs.get(name) ?? fallback;
        if (value !== undefined) globals.set(name, value);
      }
      continue;
    }
    if (keyword !== 'FROM') continue;
    seenFrom = true;
    const words = args.split(/\s+/).filter(Boolean);
    let platform: string | undefined;
    while (words[0]?.startsWith('--')) {
      const flag = words.shift()!;
      const m = /^--platform=(.*)$/.exec(flag);
      if (m) platform = substitute(unquote(m[1]!), globals);
    }
    if (words.length === 0) throw new DockerfileError('FROM without an image');
    const image = substitute(words[0]!, globals);
    if (image === '') throw new DockerfileError(`FROM ${words[0]} expands to an empty image name (is the ARG set?)`);
    const alias = words[1]?.toUpperCase() === 'AS' ? words[2]?.toLowerCase() : undefined;
    const earlier = stages.get(image.toLowerCase());
    let stage: FinalBase;
    if (earlier) stage = earlier;
    else if (image.toLowerCase() === 'scratch') stage = {};
    else stage = platform ? { image, platform } : { image };
    if (alias) stages.set(alias, stage);
    last = stage;
  }
  if (!last) throw new DockerfileError('no FROM instruction');
  return last;
}
