import { DockerfileError } from '../errors.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { finalBase, parseBuildArgs } from '../build/dockerfile.js';
import type { EngineChoice } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { DdiffError, UsageError } from '../errors.js';
import { tempDir } from '../util/cleanup.js';
import { diffAgainst, type DiffOptions } from './diff.js';
import type { Reporter } from './report.js';

export interface BuildOptions extends EngineChoice {
  diff?: boolean;
  output?: string;
  json?: boolean;
  allowEmpty?: boolean;
}

/** Options of `docker build` that take a value as the next argument. */
const VALUE_FLAGS = new Set([
  '-f',
  '--file',
  '-t',
  '--tag',
  '--build-arg',
  '--platform',
  '--target',
  '--label',
  '--network',
  '--iidfile',
  '--cache-from',
  '--add-host',
  '--secret',
  '--ssh',
  '--output',
  '-o',
  '--progress',
  '--shm-size',
  '-m',
  '--memory',
  '--cpu-shares',
  '--cpuset-cpus',
  '--isolation',
  '--ulimit',
  '--security-opt',
  '--cgroup-parent',
  '--format',
]);

interface BuildArgs {
  context: string;
  dockerfile: string;
  tags: string[];
  buildArgs: string[];
  iidfile?: string;
}

/** Reads what ddiff needs from `docker build` arguments, which are passed on untouched. */
export function parseBuildCommand(args: string[]): BuildArgs {
  const tags: string[] = [];
  const buildArgs: string[] = [];
  const positional: string[] = [];
  let file: string | undefined;
  let iidfile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const takesValue = VALUE_FLAGS.has(flag);
    const value = takesValue ? (eq > 0 ? arg.slice(eq + 1) : args[++i]) : undefined;
    if (takesValue && value === undefined) throw new UsageError(`build: ${flag} needs a value`);
    if (flag === '-f' || flag === '--file') file = value;
    else if (flag === '-t' || flag === '--tag') tags.push(value!);
    else if (flag === '--build-arg') buildArgs.push(value!);
    else if (flag === '--iidfile') iidfile = value;
    else if (!arg.startsWith('-')) positional.push(arg);
  }
  const context = positional.at(-1);
  if (!context) throw new UsageError('build: no build context given (e.g. ddiff build --diff -t app:1 .)');
  // docker resolves a relative -f against the working directory; podman also tries the context.
  const dockerfile =
    file === undefined
      ? join(context, 'Dockerfile')
      : isAbsolute(file) || file === '-' || existsSync(file)
        ? file
        : existsSync(join(context, file))
          ? join(context, file)
          : file;
  const parsed: BuildArgs = { context, dockerfile, tags, buildArgs };
  if (iidfile) parsed.iidfile = iidfile;
  return parsed;
}

/** `ddiff build [--diff] [-o FILE] <docker build args…>`. */
export async function build(args: string[], options: BuildOptions, report: Reporter): Promise<void> {
  const parsed = parseBuildCommand(args);
  const engine = chooseEngine(options);
  if (engine.name === 'containerd') throw new UsageError('build runs docker build or podman build; containerd (ctr) builds nothing');
  let base: string | undefined;
  if (options.diff) {
    if (parsed.dockerfile === '-') throw new UsageError('build --diff needs a Dockerfile file, not stdin');
    let text: string;
    try {
      text = await readFile(parsed.dockerfile, 'utf8');
    } catch (error) {
      throw new DdiffError(`${parsed.dockerfile}: cannot read the Dockerfile (${(error as Error).message})`);
    }
    try {
      base = finalBase(text, parseBuildArgs(parsed.buildArgs)).image ?? '';
    } catch (error) {
      if (error instanceof DockerfileError) throw new DdiffError(`${parsed.dockerfile}: ${error.message}`);
      throw error;
    }
  }
  const scratchDir = await tempDir('ddiff-build-');
  try {
    const iidfile = parsed.iidfile ?? join(scratchDir.path, 'iid');
    const extra = parsed.iidfile ? [] : ['--iidfile', iidfile];
    await engine.run(['build', ...extra, ...args], { stdout: process.stderr });
    const imageId = (await readFile(iidfile, 'utf8')).trim();
    const target = parsed.tags[0] ?? imageId;
    if (!options.diff) return;
    const diffOptions: DiffOptions = { engine: engine.name };
    if (options.output) diffOptions.output = options.output;
    if (options.json) diffOptions.json = true;
    if (options.allowEmpty) diffOptions.allowEmpty = true;
    await diffAgainst(base === '' ? undefined : base, [target], diffOptions, report);
  } finally {
    await scratchDir.dispose();
  }
}
