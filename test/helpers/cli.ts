import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (tests run from dist/test/...). */
export const repoRoot = join(here, '..', '..', '..');
/** The bundled CLI, as installed (package.json's bin; scripts/bundle.mjs makes it). */
export const cliPath = join(repoRoot, 'dist', 'ddiff.mjs');
export const fixturesDir = join(repoRoot, 'fixtures');
export const sharedRealDir = join(repoRoot, '..', 'shared', 'fixtures', 'real');
const rssReporter = join(here, 'report-rss.js');
/** Node options of the CLI's shebang line: the tests run it as the installed `ddiff` runs. */
export const cliNodeOptions = readFileSync(cliPath, 'utf8')
  .split('\n', 1)[0]!
  .replace(/^#!.*?\bnode\b/, '')
  .trim()
  .split(/\s+/)
  .filter(Boolean);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident set size of the ddiff process, in bytes. */
  maxRss: number;
}

/** Runs the built CLI as a user would, optionally feeding stdin; never throws on a non-zero exit. */
export function runCli(
  args: string[],
  options: { stdin?: NodeJS.ReadableStream | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliNodeOptions, '--import', rssReporter, cliPath, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.stdin.on('error', () => undefined);
    if (Buffer.isBuffer(options.stdin)) child.stdin.end(options.stdin);
    else if (options.stdin) options.stdin.pipe(child.stdin);
    else child.stdin.end();
    child.on('error', reject);
    child.on('close', (code) => {
      const match = /\nddiff-test-maxrss=(\d+)\n?$/.exec(stderr);
      const maxRss = match ? Number(match[1]) * 1024 : 0;
      if (match) stderr = stderr.slice(0, match.index);
      resolve({ code: code ?? -1, stdout, stderr, maxRss });
    });
  });
}

/** The image ID of the first image of an archive, as `ddiff list --json` reads it. */
export async function imageIdOf(archive: string): Promise<string> {
  const r = await runCli(['list', '--json', archive]);
  if (r.code !== 0) throw new Error(`ddiff list --json ${archive}: exit ${r.code}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { images: { id: string }[] }).images[0]!.id;
}

/** `ddiff diff` of fixtures/docker-app.tar against fixtures/docker-base.tar, written into `dir`: the bundle's path. */
export async function fixtureBundle(dir: string): Promise<string> {
  const bundle = join(dir, 'app.ddiff');
  const r = await runCli(['diff', join(fixturesDir, 'docker-base.tar'), join(fixturesDir, 'docker-app.tar'), '-o', bundle]);
  if (r.code !== 0) throw new Error(`ddiff diff of the fixtures: exit ${r.code}: ${r.stderr}`);
  return bundle;
}
