// The hostile-input corpus (corpus.ts) through every command it names: through the CLI (exit code,
// one stderr line naming the input, nothing left behind) and in-process (the error's class).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { repoRoot } from '../helpers/cli.js';
import { join } from 'node:path';
import { CASES, type Command, type Context } from './corpus.js';
import { makeContext, runInProcess, runThroughCli } from './harness.js';

let ctx: Context;
before(async () => {
  ctx = await makeContext('ddiff-hostile-corpus-');
});
after(async () => {
  if (ctx) await rm(ctx.dir, { recursive: true, force: true });
});

describe('hostile-input corpus', { concurrency: 3 }, () => {
  test('case names are unique, and README.md lists every case', async () => {
    assert.equal(new Set(CASES.map((c) => c.name)).size, CASES.length);
    const readme = await readFile(join(repoRoot, 'test', 'hostile', 'README.md'), 'utf8');
    const listed = new Set([...readme.matchAll(/^\|\s*([a-z0-9-]+)\s*\|/gm)].map((m) => m[1]));
    const missing = CASES.filter((c) => !listed.has(c.name)).map((c) => c.name);
    assert.deepEqual(missing, [], 'cases missing from test/hostile/README.md');
  });

  for (const hostile of CASES) {
    test(hostile.name, { timeout: 120_000 }, async () => {
      const input = await hostile.build(ctx, join(ctx.dir, `${hostile.name}.input`));
      const loadBase = hostile.loadBase?.(ctx) ?? ctx.base;
      for (const [command, expect] of Object.entries(hostile.runs) as [Command, NonNullable<(typeof hostile.runs)[Command]>][]) {
        await runThroughCli(command, input, ctx, expect, loadBase);
        // The typed error, in-process (the gzip bombs are measured through the CLI only).
        if (command === 'list-stdin' || expect.maxRssMb !== undefined) continue;
        const thrown = await runInProcess(command, input, ctx, loadBase);
        assert.equal(thrown, expect.code === 0 ? 'ok' : expect.error, `${hostile.name} / ${command}: in-process outcome`);
      }
    });
  }
});
