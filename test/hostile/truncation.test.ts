// Truncation at every 512-byte boundary of a small archive (fixtures/docker-app.tar) and of a
// small bundle: each cut fails with exit 1 and one error line naming the cut file, or — when the
// cut only drops entries ddiff never reads, such as the end-of-archive blocks — succeeds with
// exactly the output of the whole file. Through the CLI (`list`, `verify`) and in-process
// (`diff` with the cut as target, `load -o` of the cut bundle).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import type { Context } from './corpus.js';
import { errorLine, listTree, makeContext, runInProcessDetailed } from './harness.js';
import { BLOCK, tarEntries } from './tar-edit.js';

const { DdiffError } = await import('../../src/errors.js');

let ctx: Context;
before(async () => {
  ctx = await makeContext('ddiff-hostile-cut-');
});
after(async () => {
  if (ctx) await rm(ctx.dir, { recursive: true, force: true });
});

/** Runs `fn` over `items` with at most `limit` at a time. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/** True when `cut` falls between entries (at a header) or within the end-of-archive blocks. */
function betweenEntries(tar: Buffer, cut: number): boolean {
  const entries = tarEntries(tar);
  const last = entries.at(-1)!;
  return entries.some((e) => e.headerOffset === cut) || cut >= last.dataOffset + Math.ceil(last.size / BLOCK) * BLOCK;
}

/** Names of the entries a cut at `cut` loses (wholly or partly). */
function lost(tar: Buffer, cut: number): string[] {
  return tarEntries(tar)
    .filter((e) => e.dataOffset + e.size > cut || e.headerOffset >= cut)
    .map((e) => e.name);
}

const cutsOf = (bytes: Buffer) => Array.from({ length: bytes.length / BLOCK }, (_, i) => i * BLOCK);

describe('truncation at every 512-byte boundary', () => {
  test('an archive (docker-app.tar): list through the CLI, diff (as target) in-process', { timeout: 120_000 }, async (t) => {
    const dir = join(ctx.dir, 'archive-cuts');
    await mkdir(dir);
    const whole = await runCli(['list', '--json', ctx.target]);
    assert.equal(whole.code, 0, whole.stderr);
    const expected = whole.stdout.replaceAll(ctx.target, 'X');
    let succeeded = 0;
    await pool(cutsOf(ctx.targetBytes), 3, async (cut) => {
      const file = join(dir, `cut-${cut}.tar`);
      await writeFile(file, ctx.targetBytes.subarray(0, cut));
      const r = await runCli(['list', '--json', file], { env: { DDIFF_TMPDIR: dir } });
      if (r.code === 0) {
        succeeded += 1;
        assert.ok(betweenEntries(ctx.targetBytes, cut), `cut at ${cut}: success, but the cut is inside an entry`);
        assert.deepEqual(
          lost(ctx.targetBytes, cut).filter((n) => n !== 'repositories'),
          [],
          `cut at ${cut}: success although entries were lost`,
        );
        assert.equal(r.stdout.replaceAll(file, 'X'), expected, `cut at ${cut}: success with a different output`);
      } else {
        assert.equal(r.code, 1, `cut at ${cut}: exit ${r.code}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.ok(errorLine(r).includes(file), `cut at ${cut}: the error names the file: ${r.stderr}`);
      }
    });
    t.diagnostic(`${ctx.targetBytes.length / BLOCK} cuts, ${succeeded} harmless (only 'repositories' or the end-of-archive blocks lost)`);
    // In-process, as the target of a diff (stages the target's own layer).
    for (const cut of cutsOf(ctx.targetBytes)) {
      const file = join(dir, `cut-${cut}.tar`);
      const run = await runInProcessDetailed('diff-target', file, ctx, ctx.base);
      if (run.outcome === 'ok')
        assert.ok(
          betweenEntries(ctx.targetBytes, cut) && lost(ctx.targetBytes, cut).every((n) => n === 'repositories'),
          `diff of the cut at ${cut} succeeded`,
        );
      else assert.ok(run.error instanceof DdiffError && run.error.exitCode === 1, `diff of the cut at ${cut}: ${String(run.error)}`);
    }
  });

  test('a bundle: verify through the CLI, load -o in-process', { timeout: 120_000 }, async (t) => {
    const dir = join(ctx.dir, 'bundle-cuts');
    await mkdir(dir);
    const whole = await runCli(['verify', ctx.bundle]);
    assert.equal(whole.code, 0, whole.stderr);
    const expected = whole.stdout.replaceAll(ctx.bundle, 'X');
    const reference = await runInProcessDetailed('load', ctx.bundle, ctx, ctx.base);
    assert.equal(reference.outcome, 'ok', String(reference.error));
    const rebuilt = await readFile(reference.out);
    const entries = tarEntries(ctx.bundleBytes);
    const endOfEntries = entries.at(-1)!.dataOffset + Math.ceil(entries.at(-1)!.size / BLOCK) * BLOCK;
    let succeeded = 0;
    await pool(cutsOf(ctx.bundleBytes), 3, async (cut) => {
      const file = join(dir, `cut-${cut}.ddiff`);
      await writeFile(file, ctx.bundleBytes.subarray(0, cut));
      const r = await runCli(['verify', file], { env: { DDIFF_TMPDIR: dir } });
      if (r.code === 0) {
        succeeded += 1;
        assert.ok(cut >= endOfEntries, `cut at ${cut}: verify succeeded although the cut drops bundle entries`);
        assert.equal(r.stdout.replaceAll(file, 'X'), expected);
      } else {
        assert.equal(r.code, 1, `cut at ${cut}: exit ${r.code}: ${r.stderr}`);
        assert.ok(errorLine(r).includes(file), `cut at ${cut}: the error names the file: ${r.stderr}`);
      }
    });
    t.diagnostic(`${ctx.bundleBytes.length / BLOCK} cuts, ${succeeded} at the end-of-archive blocks (harmless)`);
    for (const cut of cutsOf(ctx.bundleBytes)) {
      const run = await runInProcessDetailed('load', join(dir, `cut-${cut}.ddiff`), ctx, ctx.base);
      if (run.outcome === 'ok') {
        assert.ok(cut >= endOfEntries, `load of the cut at ${cut} succeeded`);
        assert.ok((await readFile(run.out)).equals(rebuilt), `load of the cut at ${cut}: a different archive`);
      } else {
        assert.ok(run.error instanceof DdiffError && run.error.exitCode === 1, `load of the cut at ${cut}: ${String(run.error)}`);
        assert.deepEqual(
          (await listTree(join(run.out, '..'))).filter((n) => n !== 'tmp'),
          [],
          `load of the cut at ${cut} left output`,
        );
      }
    }
  });
});
