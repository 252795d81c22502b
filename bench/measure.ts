/**
 * How the bench measures: child processes timed from outside, ddiff with the probe preloaded
 * (peak RSS, CPU, bytes read/written), medians of repeated or interleaved runs, and the rows of
 * the results table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The CLI's shebang options: the bench runs it as the installed `ddiff` does.
import { cliNodeOptions, cliPath } from '../test/helpers/cli.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The CLI as installed (dist/ddiff.mjs) and the probe next to this file (dist/bench/probe.js). */
export const cli = cliPath;
const probe = join(here, 'probe.js');
export const MB = 1_000_000;

export interface Measure {
  wall: number;
  cpu?: number;
  maxRss?: number;
  read?: number;
  written?: number;
}

export interface Row {
  size: string;
  step: string;
  m: Measure;
  bundle?: number;
  baseline?: string;
  /** The baseline's wall time (s), when the ratio is a time ratio. */
  baselineWall?: number;
  ratio?: number;
  target?: string;
  /** What went wrong instead of a measurement (a step that failed). */
  note?: string;
  /** The acceptance line of issue 10 this row is judged against (for the summary). */
  accept?: string;
  /**
   * The acceptance line this row bounds: the same job (what ddiff must read, check and write)
   * done by standard tools, as a ratio against the same floor. One that misses too says the line
   * asks for less than the job takes on this machine.
   */
  bounds?: string;
}

export const rows: Row[] = [];

export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<{ stdout: string; stderr: string; wall: number; code: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({ stdout, stderr, wall, code: code ?? -1 });
    });
  });
}

export type Probed = Measure & { stdout: string };

/** Runs ddiff with the probe preloaded: wall, CPU, peak RSS and bytes read/written of the node process. */
export async function ddiff(args: string[], env?: NodeJS.ProcessEnv): Promise<Probed> {
  const r = await run(process.execPath, [...cliNodeOptions, '--import', probe, cli, '-q', ...args], env ? { env } : {});
  if (r.code !== 0) throw new Error(`ddiff ${args.join(' ')} failed: ${r.stderr.replace(/\nddiff-probe=.*\n?/, '').trim()}`);
  const match = /ddiff-probe=(\{.*\})/.exec(r.stderr);
  const p = match ? (JSON.parse(match[1]!) as { maxRss: number; cpu: number; rchar: number; wchar: number }) : undefined;
  return { wall: r.wall, cpu: p?.cpu, maxRss: p?.maxRss, read: p?.rchar, written: p?.wchar, stdout: r.stdout };
}

/** Runs a shell command line; CPU time of its children from bash's `times`. */
export async function shell(line: string): Promise<Measure & { stdout: string }> {
  const r = await run('bash', ['-c', `${line}\ntimes >&2`]);
  if (r.code !== 0) throw new Error(`${line} failed: ${r.stderr}`);
  const times = r.stderr.trim().split('\n').at(-1) ?? '';
  const secs = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { wall: r.wall, cpu: secs.length === 2 ? secs[0]! + secs[1]! : undefined, stdout: r.stdout };
}

/** A shell command's stdout (trimmed); throws when it fails. */
export function output(line: string): string {
  const r = spawnSync('bash', ['-c', line], { encoding: 'utf8', maxBuffer: 64 * MB });
  if (r.status !== 0) throw new Error(`${line} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Repeats a measurement and keeps the median run: this machine's timings are noisy, and Docker's
 * (vfs) load times swing both ways, so neither the fastest nor one run is representative.
 */
export const REPEAT = Number(process.env.DDIFF_BENCH_REPEAT ?? 3);

function mid<T extends Measure>(runs: T[]): T {
  return [...runs].sort((x, y) => x.wall - y.wall)[Math.floor((runs.length - 1) / 2)]!;
}

export async function median<T extends Measure>(measureOnce: () => Promise<T>, before?: () => Promise<unknown>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < REPEAT; i++) {
    if (before) await before();
    runs.push(await measureOnce());
  }
  return mid(runs);
}

/** Runs two measurements alternately (so both see the same machine state) and keeps each median. */
export async function interleaved<A extends Measure, B extends Measure>(
  a: () => Promise<A>,
  b: () => Promise<B>,
  before?: () => Promise<unknown>,
): Promise<[A, B]> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let i = 0; i < REPEAT; i++) {
    if (before) await before();
    as.push(await a());
    if (before) await before();
    bs.push(await b());
  }
  return [mid(as), mid(bs)];
}

export function dockerAnswers(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore' }).status === 0;
}

export function podmanAnswers(): boolean {
  return spawnSync('podman', ['version'], { stdio: 'ignore' }).status === 0;
}

export function fmt(n: number | undefined, digits = 2): string {
  return n === undefined ? '-' : n.toFixed(digits);
}

/** Peak RSS allowed everywhere (issue 10). */
export const RSS_LIMIT = 150 * MB;

/** hold / miss for a ratio against a target such as '≤ 1.15' or '< 1'; '' when there is nothing to judge. */
export function verdict(row: Row): string {
  if (row.note) return 'failed';
  const rssMiss = row.m.maxRss !== undefined && row.m.maxRss > RSS_LIMIT;
  const t = /^\s*(≤|<)\s*([\d.]+)/.exec(row.target ?? '');
  let v = '';
  if (t && row.ratio !== undefined) {
    const limit = Number(t[2]);
    v = (t[1] === '≤' ? row.ratio <= limit : row.ratio < limit) ? 'hold' : 'miss';
  }
  if (rssMiss) v = v ? `${v}, RSS miss` : 'RSS miss';
  return v;
}

export function record(row: Row): Row {
  rows.push(row);
  const m = row.m;
  const said = row.note
    ? ` FAILED: ${row.note}`
    : ` ${fmt(m.wall)}s cpu ${fmt(m.cpu)}s rss ${fmt(m.maxRss && m.maxRss / MB, 0)}MB${row.ratio === undefined ? '' : ` ratio ${fmt(row.ratio)} ${verdict(row)}`}`;
  process.stderr.write(`  ${row.size.padEnd(8)} ${row.step.padEnd(44)}${said}\n`);
  return row;
}

/** The results table of the rows whose label passes `filter`. */
export function table(filter: (r: Row) => boolean = () => true): string {
  const head =
    '| image | step | wall s | cpu s | peak RSS MB | read MB | written MB | bundle MB | baseline | baseline s | ratio | target | verdict |';
  const lines = [head, '|---|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|---|'];
  for (const r of rows.filter(filter)) {
    const m = r.m;
    if (r.note) {
      const said = `failed: ${r.note.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 300)}`;
      lines.push(`| ${[r.size, r.step, said, ...Array(8).fill(''), r.target ?? '', 'failed'].join(' | ')} |`);
      continue;
    }
    lines.push(
      `| ${r.size} | ${r.step} | ${m.wall ? fmt(m.wall) : ''} | ${fmt(m.cpu)} | ${fmt(m.maxRss && m.maxRss / MB, 0)} | ${fmt(m.read && m.read / MB, 0)} | ${fmt(m.written && m.written / MB, 0)} | ${fmt(r.bundle && r.bundle / MB, 3)} | ${r.baseline ?? ''} | ${r.baselineWall === undefined ? '' : fmt(r.baselineWall)} | ${fmt(r.ratio)} | ${r.target ?? ''} | ${verdict(r)} |`,
    );
  }
  return lines.join('\n');
}

/** Runs a step; a failure (ddiff changing under the bench, an engine refusing) becomes a 'failed' row. */
export async function attempt(size: string, step: string, target: string | undefined, body: () => Promise<void>): Promise<boolean> {
  try {
    await body();
    return true;
  } catch (error) {
    record({ size, step, m: { wall: 0 }, ...(target ? { target } : {}), note: (error as Error).message.split('\n')[0] ?? String(error) });
    return false;
  }
}
