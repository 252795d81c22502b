/**
 * Running one hostile input through one command, both through the CLI (exit code, one stderr line
 * naming the input, peak RSS, no leftovers) and in-process (the class of the error thrown).
 */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir, runCli, type CliResult } from '../helpers/cli.js';
import type { Command, Context, Expectation } from './corpus.js';

/** The fixtures and a good bundle (diff docker-base.tar docker-app.tar) in a new temporary directory. */
export async function makeContext(prefix: string): Promise<Context> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const base = join(fixturesDir, 'docker-base.tar');
  const target = join(fixturesDir, 'docker-app.tar');
  const bundle = join(dir, 'good.ddiff');
  // gzip: the corpus names the layer blob by its digest, which the compression decides.
  const r = await runCli(['diff', base, target, '-o', bundle, '--compress', 'gzip']);
  assert.equal(r.code, 0, `the good bundle: ${r.stderr}`);
  return {
    dir,
    base,
    baseBytes: await readFile(base),
    target,
    targetBytes: await readFile(target),
    bundle,
    bundleBytes: await readFile(bundle),
    other: join(fixturesDir, 'podman-app.docker-archive.tar'),
  };
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Files and directories under `dir`, recursively (relative names). */
export async function listTree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (sub: string) => {
    for (const e of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      found.push(rel);
      if (e.isDirectory()) await walk(rel);
    }
  };
  await walk('');
  return found.sort();
}

/** The argv of `command` with X = `input`, and the path it writes (if any). */
export function commandLine(command: Command, input: string, ctx: Context, out: string, loadBase: string): string[] {
  switch (command) {
    case 'list':
      return ['list', '--json', input];
    case 'list-stdin':
      return ['list', '--json', '-'];
    case 'diff-base':
      return ['diff', input, ctx.target, '-o', out];
    case 'diff-target':
      return ['diff', ctx.base, input, '-o', out];
    case 'load-base':
      return ['load', ctx.bundle, '--base', input, '-o', out];
    case 'load':
      return ['load', input, '--base', loadBase, '-o', out];
    case 'verify':
      return ['verify', input, '--base', loadBase];
    case 'diff-output':
      return ['diff', ctx.base, ctx.target, '-o', input];
  }
}

/** The one `ddiff: error:` line of a failed run (warnings may precede it); asserts there is exactly one. */
export function errorLine(r: CliResult): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  // With --json (list's runs) the error is one JSON line, {"error":{"code","message"}}: read as the text line.
  const errors = lines
    .filter((l) => !l.startsWith('warning: '))
    .map((l) => (l.startsWith('{"error":') ? `ddiff: error: ${(JSON.parse(l) as { error: { message: string } }).error.message}` : l));
  assert.equal(errors.length, 1, `exactly one error line on stderr, got: ${JSON.stringify(r.stderr)}`);
  assert.match(errors[0]!, /^ddiff: error: /);
  assert.doesNotMatch(errors[0]!, /[\u0000-\u001f\u007f-\u009f]/, 'no raw control characters in the error line');
  return errors[0]!;
}

export interface RunOutcome {
  cli: CliResult;
  line?: string;
}

/**
 * Runs `command` on `input` through the CLI in a fresh directory (its own DDIFF_TMPDIR and output
 * directory) and checks the expectation; nothing may be left in either directory on failure.
 */
export async function runThroughCli(
  command: Command,
  input: string,
  ctx: Context,
  expect: Expectation,
  loadBase: string,
): Promise<RunOutcome> {
  const work = await mkdtemp(join(ctx.dir, `run-${command}-`));
  const tmp = join(work, 'tmp');
  const outDir = join(work, 'out');
  await mkdir(tmp);
  await mkdir(outDir);
  const out = join(outDir, 'result');
  const argv = commandLine(command, input, ctx, out, loadBase);
  const r = await runCli(argv, {
    env: { DDIFF_TMPDIR: tmp, DDIFF_ENGINE: 'docker', PATH: process.env.PATH },
    cwd: outDir,
    ...(command === 'list-stdin' ? { stdin: createReadStream(input) } : {}),
  });
  const what = `ddiff ${argv.join(' ')}`;
  assert.equal(r.code, expect.code, `${what}: exit ${r.code}, expected ${expect.code}; stderr: ${r.stderr}`);
  if (expect.maxRssMb !== undefined) {
    assert.ok(
      r.maxRss > 0 && r.maxRss < expect.maxRssMb << 20,
      `${what}: peak RSS ${(r.maxRss / 2 ** 20).toFixed(0)} MiB, limit ${expect.maxRssMb} MiB`,
    );
  }
  assert.deepEqual(await listTree(tmp), [], `${what}: temporary files left in DDIFF_TMPDIR`);
  if (expect.code === 0) {
    if (['diff-base', 'diff-target', 'load', 'load-base'].includes(command)) {
      assert.deepEqual(await listTree(outDir), ['result'], `${what}: the output and nothing else`);
    }
    return { cli: r };
  }
  assert.deepEqual(await listTree(outDir), [], `${what}: no output (or temporary output) after a failure`);
  if (command !== 'list' && command !== 'list-stdin') assert.doesNotMatch(r.stdout, /\S/, `${what}: nothing on stdout`);
  else assert.equal(r.stdout, '', `${what}: nothing on stdout`);
  const line = errorLine(r);
  const named = command === 'list-stdin' ? '<stdin>' : expect.names === 'base' ? ctx.base : expect.names === 'other' ? ctx.other : input;
  assert.ok(line.includes(named), `${what}: the error names ${named}: ${line}`);
  if (expect.message) assert.match(line, expect.message, what);
  if (process.env.DDIFF_TEST_SHOW) console.log(`${command}: ${line.replace(ctx.dir, '$DIR')}`);
  return { cli: r, line };
}

/** Serializes in-process runs: they share process.env.DDIFF_TMPDIR and the cleanup registry. */
let chain: Promise<unknown> = Promise.resolve();
export function serially<T>(fn: () => Promise<T>): Promise<T> {
  const next = chain.then(fn, fn);
  chain = next.catch(() => undefined);
  return next;
}

type Commands = {
  list: typeof import('../../src/commands/list.js').list;
  diff: typeof import('../../src/commands/diff.js').diff;
  load: typeof import('../../src/commands/load.js').load;
  verify: typeof import('../../src/commands/verify.js').verify;
};
let commands: Commands | undefined;
async function loadCommands(): Promise<Commands> {
  commands ??= {
    list: (await import('../../src/commands/list.js')).list,
    diff: (await import('../../src/commands/diff.js')).diff,
    load: (await import('../../src/commands/load.js')).load,
    verify: (await import('../../src/commands/verify.js')).verify,
  };
  return commands;
}

/** The name of what an in-process run threw (`error.name`, plus `(CODE)` for system errors), or 'ok'. */
export async function runInProcess(command: Command, input: string, ctx: Context, loadBase: string): Promise<string> {
  return (await runInProcessDetailed(command, input, ctx, loadBase)).outcome;
}

/** As runInProcess, with the error itself and the output path. */
export async function runInProcessDetailed(
  command: Command,
  input: string,
  ctx: Context,
  loadBase: string,
): Promise<{ outcome: string; error?: unknown; out: string }> {
  const { list, diff, load, verify } = await loadCommands();
  const work = await mkdtemp(join(ctx.dir, `inproc-${command}-`));
  const tmp = join(work, 'tmp');
  await mkdir(tmp);
  const out = join(work, 'result');
  const report = { out: () => undefined, warn: () => undefined };
  return serially(async () => {
    const saved = process.env.DDIFF_TMPDIR;
    process.env.DDIFF_TMPDIR = tmp;
    try {
      switch (command) {
        case 'list':
          await list([input], { json: true }, () => undefined);
          break;
        case 'diff-base':
          await diff([input, ctx.target], { output: out }, report);
          break;
        case 'diff-target':
          await diff([ctx.base, input], { output: out }, report);
          break;
        case 'load-base':
          await load(ctx.bundle, { base: input, output: out }, report);
          break;
        case 'load':
          await load(input, { base: loadBase, output: out }, report);
          break;
        case 'verify':
          await verify(input, { base: loadBase }, report);
          break;
        case 'diff-output':
          await diff([ctx.base, ctx.target], { output: input }, report);
          break;
        case 'list-stdin':
          throw new Error('list-stdin is not run in-process');
      }
      return { outcome: 'ok', out };
    } catch (error) {
      const e = error as Error & { code?: string };
      return { outcome: typeof e.code === 'string' ? `${e.name}(${e.code})` : e.name, error, out };
    } finally {
      if (saved === undefined)
        delete process.env.DDIFF_TMPDIR; // assigning undefined would store the string 'undefined'
      else process.env.DDIFF_TMPDIR = saved;
      assert.deepEqual(await listTree(tmp), [], `in-process ${command}: temporary files left`);
    }
  });
}
