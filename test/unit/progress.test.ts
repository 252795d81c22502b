// Progress lines ("layer i/N", bytes, rate, ETA) on the long steps: on stderr, only on a terminal,
// silenced by -q (which also silences the summary line). The terminal is a pseudo-TTY (script(1)).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cliPath, fixturesDir, repoRoot, runCli } from '../helpers/cli.js';

const base = join(fixturesDir, 'docker-base.tar');
const app = join(fixturesDir, 'docker-app.tar');
const work = await mkdtemp(join(tmpdir(), 'ddiff-progress-'));
after(() => rm(work, { recursive: true, force: true }));
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs a command with stdout and stderr on a pseudo-terminal; returns what the terminal showed. */
function onTerminal(argv: string[]): { code: number; output: string } {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', quoted, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, output: r.stdout };
}

const ddiff = (...args: string[]) => onTerminal([process.execPath, cliPath, ...args]);

test('list, diff, verify and load -o show "layer i/N", bytes and rate on a terminal; -q shows neither progress nor summary', async (t) => {
  if (!hasScript) return t.skip('script(1) (util-linux) is not installed');
  const bundle = join(work, 'app.ddiff');
  const steps: [string[], RegExp][] = [
    [['list', app], /verifying {2}layer 3\/3 {2}16\.4 ?kB\/16\.4 ?kB {2}\S+\/s/],
    [['diff', base, app, '-o', bundle], /bundling {2}layer 1\/1 {2}6\.66 ?kB\/6\.66 ?kB/],
    [['verify', bundle], /verifying {2}layer 2\/2 /],
    [['load', bundle, '--base', base, '-o', join(work, 'out.tar')], /writing {2}layer 3\/3 /],
  ];
  for (const [args, line] of steps) {
    const shown = ddiff(...args);
    assert.equal(shown.code, 0, shown.output);
    assert.match(shown.output, line, `${args[0]}: ${JSON.stringify(shown.output)}`);
  }
  const quiet = ddiff('diff', '-q', base, app, '-o', join(work, 'q.ddiff'));
  assert.equal(quiet.code, 0, quiet.output);
  assert.equal(quiet.output, '', '-q: no progress and no "Wrote …" line');
});

test('no progress when stderr is not a terminal', async () => {
  const r = await runCli(['diff', base, app, '-o', join(work, 'pipe.ddiff')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('a step in progress shows its ETA, redrawn in place; the final line ends it', async (t) => {
  if (!hasScript) return t.skip('script(1) (util-linux) is not installed');
  const progressModule = join(repoRoot, 'dist', 'src', 'util', 'progress.js');
  const driver = `
    const { configureProgress, startStep } = await import(${JSON.stringify(progressModule)});
    configureProgress({});
    const step = startStep('verifying', [1000000, 1000000]);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const first = step.stream(0);
    first.resume();
    for (let i = 0; i < 3; i++) { first.write(Buffer.alloc(250000)); await sleep(220); }
    step.done(1, 1000000);
    step.finish();`;
  const shown = onTerminal([process.execPath, '--input-type=module', '-e', driver]);
  assert.equal(shown.code, 0, shown.output);
  assert.match(shown.output, /\r\u001b\[2Kverifying {2}layer 1\/2 {2}\S+ ?kB\/2(\.0+)? ?MB {2}\S+\/s {2}ETA \d+s/);
  assert.match(shown.output, /verifying {2}layer 2\/2 {2}1\.75 ?MB\/2(\.0+)? ?MB {2}\S+\/s\r?\n$/);
});
