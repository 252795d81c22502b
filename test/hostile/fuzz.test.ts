// Fuzzing the archive and bundle readers in-process, for a bounded time (issue 6): archives and
// bundles mutated from the repo fixtures (byte flips, truncations, corrupted header fields,
// renamed/linked/dropped/duplicated entries, JSON edits re-addressed past digest checks) go
// through openArchive + readImages + verifyLayers (files, streams, spooled compressed input) and
// openBundle + verifyBundle. Every failure must be a DdiffError: no TypeError, no RangeError, no
// unhandled rejection, no hang (5 s per case). ~20 s by default; DDIFF_FUZZ_SECONDS for more,
// DDIFF_FUZZ_SEED to replay a run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { fixturesDir, runCli } from '../helpers/cli.js';
import { listTree } from './harness.js';
import { applyMutations, mutationArb, type Mutation } from './mutate.js';

const { DdiffError } = await import('../../src/errors.js');
const { openArchive, openSeekableArchive } = await import('../../src/archive/open.js');
const { readImages, verifyLayers } = await import('../../src/archive/read.js');
const { openBundle, verifyBundle } = await import('../../src/bundle/read.js');
const { diff } = await import('../../src/commands/diff.js');
const { load } = await import('../../src/commands/load.js');

const SECONDS = Number(process.env.DDIFF_FUZZ_SECONDS ?? 20);
const CASE_TIMEOUT_MS = 5_000;

interface Seed {
  name: string;
  kind: 'archive' | 'bundle';
  /** The uncompressed tar the mutations apply to. */
  tar: Buffer;
  /** gzip the mutated tar (a compressed archive: read in one pass, or spooled). */
  gzip?: boolean;
}

let dir = '';
let tmp = '';
const seeds: Seed[] = [];
const saved = process.env.DDIFF_TMPDIR;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ddiff-hostile-fuzz-'));
  tmp = join(dir, 'tmp');
  await mkdir(tmp);
  process.env.DDIFF_TMPDIR = tmp;
  const fixture = (name: string) => readFile(join(fixturesDir, name));
  for (const name of [
    'docker-base.tar',
    'docker-app.tar',
    'docker-multi.tar',
    'podman-app.docker-archive.tar',
    'podman-app.oci-archive.tar',
    'podman-multi-platform.oci-archive.tar',
  ]) {
    seeds.push({ name, kind: 'archive', tar: await fixture(name) });
  }
  seeds.push({ name: 'docker-app.tar (gzip)', kind: 'archive', tar: await fixture('docker-app.tar'), gzip: true });
  const bundle = join(dir, 'seed.ddiff');
  const r = await runCli(['diff', join(fixturesDir, 'docker-base.tar'), join(fixturesDir, 'docker-app.tar'), '-o', bundle]);
  assert.equal(r.code, 0, r.stderr);
  seeds.push({ name: 'bundle (docker-base → docker-app)', kind: 'bundle', tar: await readFile(bundle) });
  const multi = join(dir, 'seed-multi.ddiff');
  const m = await runCli(['diff', join(fixturesDir, 'docker-base.tar'), join(fixturesDir, 'docker-multi.tar'), '-o', multi]);
  assert.equal(m.code, 0, m.stderr);
  seeds.push({ name: 'bundle (docker-base → docker-multi)', kind: 'bundle', tar: await readFile(multi) });
});

after(async () => {
  if (saved === undefined)
    delete process.env.DDIFF_TMPDIR; // assigning undefined would store the string 'undefined'
  else process.env.DDIFF_TMPDIR = saved;
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * How the bytes are read: an archive as a file, a stream or a spooled copy, or as the target of
 * `diff` (which writes a bundle of it); a bundle by openBundle + verifyBundle, or by `load -o`.
 */
type Mode = 'file' | 'stream' | 'spool' | 'command';
const quiet = { out: () => undefined, warn: () => undefined };
const BASE = join(fixturesDir, 'docker-base.tar');

let counter = 0;
async function read(seed: Seed, bytes: Buffer, mode: Mode): Promise<void> {
  counter += 1;
  const path = join(dir, `case-${counter}${seed.kind === 'bundle' ? '.ddiff' : '.tar'}`);
  const spool = join(dir, `spool-${counter}`);
  await mkdir(spool);
  try {
    if (seed.kind === 'bundle') {
      await writeFile(path, bytes);
      if (mode === 'command') {
        await load(path, { base: BASE, output: `${path}.out.tar` }, quiet);
        return;
      }
      const bundle = await openBundle(path);
      try {
        await verifyBundle(bundle);
      } finally {
        await bundle.dispose();
      }
      return;
    }
    if (mode === 'command') {
      await writeFile(path, bytes);
      await diff([BASE, path], { output: `${path}.out.ddiff`, compress: 'none' }, quiet);
      return;
    }
    let catalog;
    if (mode === 'stream') catalog = await openArchive('-', Readable.from([bytes]));
    else {
      await writeFile(path, bytes);
      // The spool directory belongs to the caller (commands pass their own temporary directory).
      catalog = mode === 'spool' ? await openSeekableArchive(path, spool) : await openArchive(path);
    }
    const { images } = await readImages(catalog);
    await verifyLayers(catalog, images);
  } finally {
    await rm(path, { force: true });
    await rm(`${path}.out.tar`, { force: true });
    await rm(`${path}.out.ddiff`, { force: true });
    await rm(spool, { recursive: true, force: true });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hang: no answer after ${ms} ms`)), ms);
    }),
  ]);
}

test(`fuzz the archive and bundle readers (${SECONDS} s)`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
  // Errors that escape the awaited promises (a stream 'error' without a listener, an unobserved
  // rejection) are failures too.
  const escaped: unknown[] = [];
  const onEscape = (error: unknown) => escaped.push(error);
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  const outcomes = new Map<string, number>();
  const seed = process.env.DDIFF_FUZZ_SEED ? Number(process.env.DDIFF_FUZZ_SEED) : Date.now() ^ (Math.random() * 2 ** 31);
  let runs = 0;
  // fast-check's time limit abandons the case under way; its cleanup is awaited before the check.
  let inFlight: Promise<unknown> = Promise.resolve();
  try {
    const property = fc.asyncProperty(
      fc.nat({ max: seeds.length - 1 }),
      fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
      fc.constantFrom<Mode>('file', 'file', 'stream', 'spool', 'command'),
      async (which: number, mutations: Mutation[], mode: Mode) => {
        runs += 1;
        const s = seeds[which]!;
        let bytes = await applyMutations(s.tar, mutations);
        if (s.gzip) bytes = gzipSync(bytes, { level: 1 });
        const effectiveMode: Mode =
          s.kind === 'bundle'
            ? mode === 'command'
              ? 'command'
              : 'file'
            : s.gzip
              ? mode === 'file'
                ? 'stream'
                : mode
              : mode === 'spool'
                ? 'file'
                : mode;
        try {
          const reading = read(s, bytes, effectiveMode);
          inFlight = reading.catch(() => undefined);
          await withTimeout(reading, CASE_TIMEOUT_MS);
          outcomes.set('accepted', (outcomes.get('accepted') ?? 0) + 1);
        } catch (error) {
          if (!(error instanceof DdiffError)) {
            throw new Error(`${s.name} (${effectiveMode}): not a DdiffError: ${(error as Error)?.stack ?? String(error)}`);
          }
          outcomes.set(error.name, (outcomes.get(error.name) ?? 0) + 1);
        }
        if (escaped.length > 0)
          throw new Error(`${s.name} (${effectiveMode}): an error escaped: ${(escaped[0] as Error)?.stack ?? String(escaped[0])}`);
      },
    );
    await fc.assert(property, {
      seed,
      numRuns: 1_000_000,
      interruptAfterTimeLimit: SECONDS * 1000,
      markInterruptAsFailure: false,
    });
  } finally {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
    t.diagnostic(`fuzz: ${runs} iterations in ${SECONDS} s (seed ${seed}; replay with DDIFF_FUZZ_SEED=${seed})`);
    t.diagnostic(`outcomes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  assert.ok(runs > 0);
  await withTimeout(inFlight, CASE_TIMEOUT_MS);
  assert.deepEqual(await listTree(tmp), [], 'temporary files left in DDIFF_TMPDIR');
});
