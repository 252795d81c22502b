/**
 * End-to-end tests of delta bundles (issue 11) through real engines (no fakes): a base that was
 * rebuilt ships as a file-level delta against the old base, and loads back byte for byte.
 *
 * The images are crafted docker-archives of layer tars this file writes (same tar bytes = same
 * diffID), unique to the run (random contents, `ddiff-e2e-<random>/…` names):
 *
 *   A       one layer LA of ~300 entries: ~290 small text files, three 1–3 MB binary-ish files
 *           (blocks drawn from a random pool, so they repeat within a file), a symlink, a
 *           hardlink, an empty file and a 0600 file;
 *   target  [LB, LAPP]: LB is A "rebuilt" (every mtime new, three files edited in a few bytes,
 *           one 2.5 MB file moved to another directory, one file deleted, one added) and LAPP a
 *           small app layer. No image B exists anywhere: the target's first layer is its rebuilt
 *           base.
 *
 * 1. `ddiff diff A.tar target.tar` stores LB as a delta (a `delta` blob in the metadata), the
 *    bundle is at most 1/5 of the `--no-delta` one, and `inspect --json` / `verify --base` read it.
 * 2. With only A in the engine (the target removed, the recorded A.tar moved away): `load` into
 *    Docker (default and `--no-fast-path`), into Podman, and `--base A.tar -o out.tar` (no engine)
 *    each give the target's image ID and diffIDs; out.tar is read by `ddiff list`, `skopeo
 *    inspect docker-archive:` and `docker load -i`.
 * 3. `ddiff diff A:tag target:tag` from Docker references also makes a delta, which loads.
 * 4. Hostile: LB's delta blob tampered, its digest/size fixed up in ddiff-bundle.json and its
 *    entry renamed so `verify` passes and only the delta's own checks can catch it: (a) one bit
 *    of the compressed body flipped (the zstd frame's checks), (b) one byte of a tar header in a
 *    RAW record changed and the body re-encoded as a valid frame (the END record's sha256). And
 *    a `--base` archive lacking LA, or no base at all. `load` exits 1 with one error line naming
 *    the bundle (for a tampered delta) or the missing layer, no `docker load` is started, no image
 *    carrying LB reaches Docker, and `-o` leaves no file.
 *
 * Engines and skopeo that do not answer skip their tests with the reason, and fail them instead
 * when DDIFF_E2E_REQUIRE_ENGINES=1 or CI=true.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { cliNodeOptions, cliPath, repoRoot } from '../helpers/cli.js';
import { sha256Hex } from '../helpers/tar.js';
import { docker, podman, tarEntries, uniqueName, type TestEngine } from './engines.js';
import { DOCKER_ENV, freshDirs, NO_ENGINE, once, PODMAN_ENV, ready, type RunOutcome, show } from './support.js';
import { fixChecksum, octal, padding, type TarEntry, tarOf } from './support.js';
import { assertSameImage, type Crafted, loadCrafted, removeIfPresent, writeDockerArchive } from './support.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-delta-'));

after(async () => {
  await docker.cleanup();
  await podman.cleanup();
  await rm(work, { recursive: true, force: true });
});

/** A fresh directory under the run's work directory. */
const freshDir = freshDirs(work);

// ---------------------------------------------------------------------------------------------
// Running ddiff
// ---------------------------------------------------------------------------------------------

interface Outcome extends RunOutcome {
  /** Command lines of the child processes ddiff started (polled every 20 ms from /proc). */
  children: string[][];
}

/** ddiff's direct children, by pid:start-time, with their last-read command line. */
function scanChildren(pid: number, seen: Map<string, string[]>): void {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) !== pid) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.length > 0) seen.set(`${name}:${rest[19]}`, argv);
    } catch {
      // gone meanwhile
    }
  }
}

/** Runs the built CLI (its pid is ddiff's own); SIGKILL after `limitMs`. Never throws on an exit code. */
function runDdiff(args: string[], options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [...cliNodeOptions, cliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  const seen = new Map<string, string[]>();
  const timer = setInterval(() => scanChildren(pid, seen), 20);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  let timedOut = false;
  const limit = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.limitMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      clearInterval(timer);
      resolve({ code, signal, stdout, stderr, elapsedMs: Date.now() - started, timedOut, children: [...seen.values()] });
    });
  });
}

/** ddiff succeeds (exit 0) within the limit; resolves with its stdout. */
async function ok(args: string[], options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {}): Promise<string> {
  const r = await runDdiff(args, options);
  if (process.env.DDIFF_E2E_TIMES) console.log(`# ${r.elapsedMs} ms: ddiff ${args.join(' ')}`);
  assert.ok(!r.timedOut && r.code === 0, `ddiff ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

/**
 * ddiff fails with exit 1 and exactly one line on stderr, `ddiff: error: …`, naming `names`
 * (each a string the line must contain); resolves with that line.
 */
async function failsWithOneLine(
  args: string[],
  names: string[],
  options: { env?: NodeJS.ProcessEnv; limitMs?: number } = {},
): Promise<string> {
  const r = await runDdiff(args, options);
  if (process.env.DDIFF_E2E_TIMES) console.log(`# ${r.elapsedMs} ms: ddiff ${args.join(' ')}`);
  const what = `ddiff ${args.join(' ')}: ${show(r)}`;
  assert.ok(!r.timedOut, what);
  assert.equal(r.code, 1, `exit 1 (bad input) expected: ${what}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one error line expected: ${what}`);
  const line = lines[0]!;
  assert.match(line, /^ddiff: error: /, what);
  for (const name of names) assert.ok(line.includes(name), `the error names ${name}: ${line}`);
  console.log(`# ddiff ${args[0]} …: exit ${r.code}: ${line}`);
  const loads = r.children.filter((argv) => basename(argv[0] ?? '') === 'docker' && argv[1] === 'load');
  assert.deepEqual(loads, [], `no docker load was started: ${what}`);
  return line;
}

// ---------------------------------------------------------------------------------------------
// Layer trees: base A, its rebuild B, the app layer
// ---------------------------------------------------------------------------------------------

const WORDS = 'alpha beta gamma delta epsilon package version depends section priority maintainer description'.split(' ');

/** A small text file, like a package's doc or config: words, a unique line, 200 B to ~3 KB. */
function textFile(i: number): Buffer {
  const lines = [`# file ${i} ${randomBytes(8).toString('hex')}`];
  const n = 4 + ((i * 37) % 60);
  for (let l = 0; l < n; l++) lines.push(`${WORDS[(i + l) % WORDS.length]}: ${WORDS[(i * l) % WORDS.length]} ${(i * 31 + l) % 997}`);
  return Buffer.from(`${lines.join('\n')}\n`);
}

/**
 * A binary-ish file of `size` bytes: 8 KiB blocks drawn from a random pool a third its size,
 * each stamped with its number, so it repeats within itself and compresses about 3:1.
 */
function binaryFile(size: number): Buffer {
  const block = 8192;
  const pool = randomBytes(Math.max(block, Math.floor(size / 3 / block) * block));
  const blocks = pool.length / block;
  const out = Buffer.alloc(size);
  for (let i = 0, at = 0; at < size; i++, at += block) {
    const from = ((i * 7 + (i >> 3)) % blocks) * block;
    pool.copy(out, at, from, from + Math.min(block, size - at));
    if (at + 4 <= size) out.writeUInt32BE(i, at);
  }
  return out;
}

const MTIME_A = Date.parse('2020-09-13T12:26:40Z') / 1000;
const MTIME_B = Date.parse('2024-03-01T08:00:00Z') / 1000;

const TEXT_FILES = 290;
const BINARIES = { 'usr/lib/libbig.so.3': 3 << 20, 'usr/lib/moving/libmid.so.2': (5 << 20) / 2, 'usr/share/data/table.bin': 1 << 20 };

/** The file tree of base A: ~300 entries (see the top of the file). */
function baseEntries(): TarEntry[] {
  const dir = (name: string): TarEntry => ({ name, type: 'dir', mode: 0o755, mtime: MTIME_A });
  const file = (name: string, content: Buffer, mode = 0o644): TarEntry => ({ name, type: 'file', mode, mtime: MTIME_A, content });
  const entries: TarEntry[] = [
    dir('etc/'),
    file('etc/empty', Buffer.alloc(0)),
    file('etc/secret.key', Buffer.from(`key ${randomBytes(32).toString('hex')}\n`), 0o600),
    dir('usr/'),
    dir('usr/bin/'),
    file('usr/bin/tool', textFile(100_000), 0o755),
    { name: 'usr/bin/tool-hardlink', type: 'hardlink', mode: 0o755, mtime: MTIME_A, linkname: 'usr/bin/tool' },
    { name: 'usr/bin/tool-symlink', type: 'symlink', mode: 0o777, mtime: MTIME_A, linkname: 'tool' },
    dir('usr/lib/'),
    dir('usr/lib/moving/'),
    dir('usr/share/'),
    dir('usr/share/data/'),
    dir('usr/share/doc/'),
  ];
  for (const [name, size] of Object.entries(BINARIES)) entries.push(file(name, binaryFile(size)));
  for (let i = 0; i < TEXT_FILES; i++) {
    if (i % 10 === 0) entries.push(dir(`usr/share/doc/pkg-${i / 10}/`));
    entries.push(file(`usr/share/doc/pkg-${Math.floor(i / 10)}/file-${i}.txt`, textFile(i)));
  }
  return entries;
}

/** Flips a few bytes of a copy of `content` at `at`. */
function edited(content: Buffer, at: number, count: number): Buffer {
  const copy = Buffer.from(content);
  for (let k = 0; k < count; k++) copy[at + k] = copy[at + k]! ^ 0x5a;
  return copy;
}

/**
 * A "rebuilt": every mtime new; libbig.so.3 (4 bytes mid-file), table.bin (3 bytes) and one text
 * file (2 bytes) edited; libmid.so.2 moved to opt/moved/; one text file deleted; one added.
 */
function rebuiltEntries(a: TarEntry[]): TarEntry[] {
  const b: TarEntry[] = [];
  for (const e of a) {
    const n: TarEntry = { ...e, mtime: MTIME_B };
    if (e.name === 'usr/share/doc/pkg-7/file-77.txt') continue; // deleted
    if (e.name === 'usr/lib/moving/libmid.so.2') continue; // moved, below
    if (e.name === 'usr/lib/libbig.so.3') n.content = edited(e.content!, (3 << 20) / 2 + 1234, 4);
    if (e.name === 'usr/share/data/table.bin') n.content = edited(e.content!, 100_000, 3);
    if (e.name === 'usr/share/doc/pkg-3/file-33.txt') n.content = edited(e.content!, 40, 2);
    b.push(n);
  }
  const moved = a.find((e) => e.name === 'usr/lib/moving/libmid.so.2')!;
  b.push({ name: 'opt/', type: 'dir', mode: 0o755, mtime: MTIME_B });
  b.push({ name: 'opt/moved/', type: 'dir', mode: 0o755, mtime: MTIME_B });
  b.push({ ...moved, name: 'opt/moved/libmid.so.2', mtime: MTIME_B });
  b.push({ name: 'usr/share/doc/pkg-29/added.txt', type: 'file', mode: 0o644, mtime: MTIME_B, content: textFile(999_999) });
  return b;
}

function appEntries(): TarEntry[] {
  return [
    { name: 'app/', type: 'dir', mode: 0o755, mtime: MTIME_B },
    {
      name: 'app/main.js',
      type: 'file',
      mode: 0o644,
      mtime: MTIME_B,
      content: Buffer.from(`console.log('${randomBytes(8).toString('hex')}');\n`),
    },
    {
      name: 'app/config.json',
      type: 'file',
      mode: 0o644,
      mtime: MTIME_B,
      content: Buffer.from(`{"id":"${randomBytes(8).toString('hex')}"}\n`),
    },
  ];
}

/** A docker-save archive of one image of these layer tars (root-owned entries, as the layers). */
async function writeImageArchive(path: string, tag: string, layers: Buffer[]): Promise<Crafted> {
  const [image] = await writeDockerArchive(path, [{ tag, layers: layers.map((data) => ({ data })) }], 'root');
  return image!;
}

// ---------------------------------------------------------------------------------------------
// Engine helpers
// ---------------------------------------------------------------------------------------------

/** No image of the engine is the target or carries its rebuilt layer LB. */
async function assertNothingLoaded(engine: TestEngine, s: Scenario): Promise<void> {
  assert.equal(await engine.has(s.target.id), false, `${engine.name} has the target ${s.target.id}: something was loaded`);
  const ids = [...new Set((await engine.must(['images', '-aq', '--no-trunc'])).split('\n').filter(Boolean))];
  if (ids.length === 0) return;
  // One inspect for all (an image removed meanwhile by another user of the daemon fails it: then one by one).
  const all = await engine.run(['image', 'inspect', '--format', '{{.Id}} {{json .RootFS.Layers}}', ...ids]);
  const lines = all.code === 0 ? all.stdout.split('\n').filter(Boolean) : [];
  if (all.code !== 0) {
    for (const id of ids) {
      const info = await engine.inspect(id).catch(() => undefined);
      if (info) lines.push(`${info.id} ${JSON.stringify(info.diffIds)}`);
    }
  }
  for (const line of lines) {
    assert.ok(!line.includes(s.lb), `${engine.name} image ${line.split(' ')[0]} holds the rebuilt layer ${s.lb}: something was loaded`);
  }
}

// ---------------------------------------------------------------------------------------------
// The scenario: base A, target = rebuilt B + app, and their bundles
// ---------------------------------------------------------------------------------------------

interface Scenario {
  dir: string;
  /** Where A.tar was when the bundles were made (gone once `bundles()` ran: see baseArchive). */
  recordedBase: string;
  /** A.tar after the bundles were made, moved here so a load without --base must use an engine. */
  baseArchive: string;
  targetTar: string;
  /** An archive of an unrelated image (no layer of A). */
  unrelatedTar: string;
  base: Crafted;
  target: Crafted;
  unrelated: Crafted;
  la: string;
  lb: string;
  lapp: string;
  /** Bytes of LB's tar. */
  lbSize: number;
}

const scenario = once(async (): Promise<Scenario> => {
  const dir = await freshDir('scenario');
  const a = baseEntries();
  const la = tarOf(a, 'root');
  const lb = tarOf(rebuiltEntries(a), 'root');
  const lapp = tarOf(appEntries(), 'root');
  const recordedBase = join(dir, 'A.tar');
  const targetTar = join(dir, 'target.tar');
  const unrelatedTar = join(dir, 'unrelated.tar');
  const base = await writeImageArchive(recordedBase, uniqueName('delta-a'), [la]);
  const target = await writeImageArchive(targetTar, uniqueName('delta-target'), [lb, lapp]);
  const unrelated = await writeImageArchive(unrelatedTar, uniqueName('delta-unrelated'), [tarOf(appEntries(), 'root')]);
  return {
    dir,
    recordedBase,
    baseArchive: join(dir, 'A-elsewhere.tar'),
    targetTar,
    unrelatedTar,
    base,
    target,
    unrelated,
    la: base.diffIds[0]!,
    lb: target.diffIds[0]!,
    lapp: target.diffIds[1]!,
    lbSize: lb.length,
  };
});

interface BlobMeta {
  digest: string;
  size: number;
  mediaType: string;
  delta?: {
    baseLayers: string[];
    uncompressedSize: number;
    wholeSize?: number;
    files: { referenced: number; deltified: number; literal: number };
  };
}

interface Metadata {
  version: number;
  base: { reference?: string; needed: string[] };
  images: { id: string; tags: string[]; layers: { diffId: string; blob?: string }[] }[];
  blobs: BlobMeta[];
}

interface DiffSummary {
  bundle: string;
  size: number;
  included: number;
  metadata: Metadata;
}

/** The blob metadata of a layer of the (only) image of a bundle. */
function layerBlob(metadata: Metadata, diffId: string): BlobMeta | undefined {
  const layer = metadata.images[0]!.layers.find((l) => l.diffId === diffId);
  assert.ok(layer, `the bundle's image lists layer ${diffId}`);
  return layer.blob === undefined ? undefined : metadata.blobs.find((b) => b.digest === layer.blob);
}

/**
 * `diff A.tar target.tar` with and without deltas (archives, no engine); afterwards A.tar is
 * moved to A-elsewhere.tar, so a load without `--base` cannot take the recorded archive.
 */
const bundles = once(async () => {
  const s = await scenario();
  const delta = join(s.dir, 'd.ddiff');
  const whole = join(s.dir, 'whole.ddiff');
  const started = Date.now();
  const d = JSON.parse(await ok(['diff', s.recordedBase, s.targetTar, '-o', delta, '--json'], { env: NO_ENGINE })) as DiffSummary;
  const diffMs = Date.now() - started;
  const w = JSON.parse(
    await ok(['diff', s.recordedBase, s.targetTar, '-o', whole, '--no-delta', '--json'], { env: NO_ENGINE }),
  ) as DiffSummary;
  await rename(s.recordedBase, s.baseArchive);
  return { delta, whole, d, w, diffMs };
});

/** Only A in Docker: A loaded, the target (and so its layer LB) absent. */
const baseInDocker = once(async () => {
  const s = await scenario();
  await bundles();
  await loadCrafted(docker, s.baseArchive, [s.base]);
  docker.track(s.target.id);
  docker.track(s.target.tag);
  return s;
});

/** Only A in Podman. */
const baseInPodman = once(async () => {
  const s = await scenario();
  await bundles();
  await loadCrafted(podman, s.baseArchive, [s.base]);
  podman.track(s.target.id);
  podman.track(s.target.tag);
  return s;
});

// ---------------------------------------------------------------------------------------------
// 1. diff: the rebuilt layer is a delta, much smaller than whole
// ---------------------------------------------------------------------------------------------

test('1 diff A.tar target.tar (rebuilt base): LB is a delta blob, the bundle ≤ 1/5 of --no-delta, inspect --json and verify --base read it', {
  timeout: 60_000,
}, async () => {
  const s = await scenario();
  const { delta, whole, d, w, diffMs } = await bundles();
  assert.equal(d.bundle, delta);
  assert.equal(d.metadata.images[0]!.id, s.target.id);
  assert.deepEqual(
    d.metadata.images[0]!.layers.map((l) => l.diffId),
    s.target.diffIds,
  );
  assert.equal(d.included, 2, 'both target layers are in the bundle (LB as a delta)');
  assert.deepEqual(
    d.metadata.base.needed,
    [s.la],
    'the base must provide LA, which the delta reads (no target layer comes from it as it is)',
  );
  assert.equal(d.metadata.version, 2, 'a bundle with deltas is format version 2');

  const lbBlob = layerBlob(d.metadata, s.lb);
  assert.ok(lbBlob?.delta, `LB is stored as a delta: ${JSON.stringify(lbBlob)}`);
  assert.deepEqual(lbBlob.delta.baseLayers, [s.la], 'the delta reads base layer LA');
  assert.equal(lbBlob.delta.uncompressedSize, s.lbSize, "the delta's uncompressedSize is LB's tar size");
  const { referenced, deltified, literal } = lbBlob.delta.files;
  // 294 regular files in LB: 288 unchanged text files + tool + empty + secret + the moved one are
  // references; the 3 edited files deltas (or literal); the added one literal.
  assert.ok(referenced >= 285, `most files are references to A's: ${JSON.stringify(lbBlob.delta.files)}`);
  assert.ok(
    deltified + literal >= 1 && deltified + literal <= 6,
    `only the edited and added files are not references: ${JSON.stringify(lbBlob.delta.files)}`,
  );
  assert.ok(deltified >= 1, `the 3 MB file edited in 4 bytes is deltified: ${JSON.stringify(lbBlob.delta.files)}`);

  const wholeLb = layerBlob(w.metadata, s.lb);
  assert.ok(wholeLb && !wholeLb.delta, '--no-delta stores LB whole');
  assert.ok(!w.metadata.blobs.some((b) => b.delta), '--no-delta: no delta blob at all');
  assert.equal(w.metadata.version, 1, 'a bundle without deltas stays format version 1');
  if (lbBlob.delta.wholeSize !== undefined)
    assert.equal(lbBlob.delta.wholeSize, wholeLb.size, "the delta's wholeSize, when measured, is the size of LB's whole blob");
  else assert.ok(lbBlob.size * 16 <= s.lbSize, 'the whole blob is left unmeasured only for a delta at most 1/16 of the layer tar');
  const [dSize, wSize] = [(await stat(delta)).size, (await stat(whole)).size];
  assert.equal(d.size, dSize);
  assert.ok(dSize * 5 <= wSize, `the delta bundle (${dSize} B) is at most 1/5 of the --no-delta one (${wSize} B)`);

  const inspected = JSON.parse(await ok(['inspect', '--json', delta], { env: NO_ENGINE })) as {
    size: number;
    images: { id: string; layers: { diffId: string; included: boolean; bundledSize?: number; delta?: BlobMeta['delta'] }[] }[];
  };
  assert.equal(inspected.size, dSize);
  assert.equal(inspected.images[0]!.id, s.target.id);
  const lbRow = inspected.images[0]!.layers.find((l) => l.diffId === s.lb);
  assert.ok(lbRow?.included && lbRow.delta, `inspect shows LB as a delta: ${JSON.stringify(lbRow)}`);
  assert.deepEqual(lbRow.delta, lbBlob.delta);
  assert.equal(lbRow.bundledSize, lbBlob.size);
  const text = await ok(['inspect', delta], { env: NO_ENGINE });
  assert.match(text, /delta, [\d.]+% of the \S+ layer tar.*; files: \d+ referenced, \d+ deltified, \d+ literal/, text);

  const verified = JSON.parse(await ok(['verify', '--json', delta, '--base', s.baseArchive], { env: NO_ENGINE })) as {
    ok: boolean;
    needed: number;
  };
  assert.equal(verified.ok, true);
  assert.equal(verified.needed, 1, 'verify counts LA, which the delta reads, as needed');
  console.log(
    `# delta bundle ${dSize} B vs --no-delta ${wSize} B (1/${(wSize / dSize).toFixed(1)}); LB ${lbBlob.size} B as a delta of ${wholeLb.size} B whole; files ${JSON.stringify(lbBlob.delta.files)}; diff took ${diffMs} ms`,
  );
});

// ---------------------------------------------------------------------------------------------
// 2. load with only A at hand: Docker, Docker --no-fast-path, Podman, --base A.tar -o
// ---------------------------------------------------------------------------------------------

for (const variant of [
  { label: 'default', args: [] as string[] },
  { label: '--no-fast-path', args: ['--no-fast-path'] },
]) {
  test(`2 load d.ddiff into Docker (${variant.label}; only A in Docker, recorded A.tar gone): the target's image ID and diffIDs`, {
    timeout: 60_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const s = await baseInDocker();
    const { delta } = await bundles();
    await removeIfPresent(docker, s.target.id);
    assert.ok(await docker.has(s.base.id), 'A is in Docker');
    assert.ok(!existsSync(s.recordedBase), 'the recorded base archive is gone');
    await ok(['load', delta, ...variant.args, '-q'], { env: DOCKER_ENV });
    await assertSameImage(docker, s.target);
  });
}

test("2 load d.ddiff --engine podman (only A in Podman): the target's image ID and diffIDs", { timeout: 60_000 }, async (t) => {
  if (!(await ready(t, [podman]))) return;
  const s = await baseInPodman();
  const { delta } = await bundles();
  await removeIfPresent(podman, s.target.id);
  await ok(['load', delta, '--engine', 'podman', '-q'], { env: PODMAN_ENV });
  await assertSameImage(podman, s.target);
});

test('2 load d.ddiff --base A.tar -o out.tar (no engine): ddiff list, skopeo inspect docker-archive: and docker load -i read the target', {
  timeout: 60_000,
}, async (t) => {
  if (!(await ready(t, [docker], { skopeo: true }))) return;
  const s = await scenario();
  const { delta } = await bundles();
  const out = join(await freshDir('out'), 'out.tar');
  await ok(['load', delta, '--base', s.baseArchive, '-o', out, '-q'], { env: NO_ENGINE });

  const listed = (
    JSON.parse(await ok(['list', '--json', out], { env: NO_ENGINE })) as { images: { id: string; layers: { diffId: string }[] }[] }
  ).images;
  assert.deepEqual(
    listed.map((i) => [i.id, i.layers.map((l) => l.diffId)]),
    [[s.target.id, s.target.diffIds]],
    'ddiff list reads out.tar as the target',
  );

  const ref = `docker-archive:${out}`;
  const raw = spawnSync('skopeo', ['inspect', '--raw', ref], { encoding: 'utf8' });
  assert.equal(raw.status, 0, `skopeo inspect --raw ${ref}: ${raw.stderr}`);
  assert.equal(
    (JSON.parse(raw.stdout) as { config: { digest: string } }).config.digest,
    s.target.id,
    'skopeo: the config digest is the image ID',
  );
  const inspected = spawnSync('skopeo', ['inspect', ref], { encoding: 'utf8' });
  assert.equal(inspected.status, 0, `skopeo inspect ${ref}: ${inspected.stderr}`);
  assert.equal((JSON.parse(inspected.stdout) as { Layers: unknown[] }).Layers.length, 2, 'skopeo inspect: two layers');

  docker.track(s.target.id);
  docker.track(s.target.tag);
  await removeIfPresent(docker, s.target.id);
  await docker.load(out);
  await assertSameImage(docker, s.target);
});

// ---------------------------------------------------------------------------------------------
// 3. diff from engine references
// ---------------------------------------------------------------------------------------------

test('3 diff A:tag target:tag (both in Docker) stores LB as a delta, and the bundle loads into Docker with only A there', {
  timeout: 60_000,
}, async (t) => {
  if (!(await ready(t, [docker]))) return;
  const s = await baseInDocker();
  await removeIfPresent(docker, s.target.id);
  await loadCrafted(docker, s.targetTar, [s.target]);
  const bundle = join(await freshDir('refs'), 'refs.ddiff');
  const d = JSON.parse(await ok(['diff', s.base.tag, s.target.tag, '-o', bundle, '--json'], { env: DOCKER_ENV })) as DiffSummary;
  assert.equal(d.metadata.images[0]!.id, s.target.id);
  assert.equal(d.metadata.base.reference, s.base.tag);
  const lbBlob = layerBlob(d.metadata, s.lb);
  assert.ok(lbBlob?.delta, `LB is stored as a delta: ${JSON.stringify(lbBlob)}`);
  assert.deepEqual(lbBlob.delta.baseLayers, [s.la]);
  const { delta } = await bundles();
  assert.ok(d.size <= (await stat(delta)).size * 1.5 + 4096, `about the size of the archive-made delta bundle: ${d.size} B`);

  await removeIfPresent(docker, s.target.id);
  await ok(['load', bundle, '-q'], { env: DOCKER_ENV });
  await assertSameImage(docker, s.target);
});

// ---------------------------------------------------------------------------------------------
// 4. Hostile: a tampered delta, a base lacking the layer the delta needs
// ---------------------------------------------------------------------------------------------

/** Offsets of every ustar header block of a tar in memory. */
function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  let pos = 0;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    offsets.push(pos);
    const size = parseInt(header.toString('ascii', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return offsets;
}

/** A tampering of LB's delta blob: returns the new blob bytes (same size) and what was done. */
type Tamper = (blob: Buffer) => { blob: Buffer; what: string };

/** Flips one bit of the blob's byte at `where` (a fraction of the blob), past the 8-byte prefix. */
function flipByte(where: number): Tamper {
  return (blob) => {
    const at = Math.max(8, Math.min(blob.length - 1, Math.floor(blob.length * where)));
    const copy = Buffer.from(blob);
    copy[at] = copy[at]! ^ 0x01;
    return { blob: copy, what: `bit 0 of byte ${at} of ${blob.length} flipped` };
  };
}

/**
 * Decompresses the delta's body (one zstd frame after the 8-byte prefix), changes one letter of
 * a tar header name the RAW records carry (`file-50.txt` → `file-5X.txt`), and compresses it
 * again as a valid frame with its content checksum: the zstd layer sees nothing wrong, so only
 * the delta's own output checks (END's sha256, the layer's diffID) can catch it. The new blob
 * differs in size, which the metadata fix-up also takes.
 */
const reencodedHeaderByte: Tamper = (blob) => {
  const body = zstdDecompressSync(blob.subarray(8));
  const needle = Buffer.from('usr/share/doc/pkg-5/file-50.txt');
  const at = body.indexOf(needle);
  assert.ok(at >= 0, `the delta's RAW records hold the tar header name ${needle}`);
  const changed = Buffer.from(body);
  changed[at + needle.length - 5] = 'X'.charCodeAt(0);
  const frame = zstdCompressSync(changed, { params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 } });
  return {
    blob: Buffer.concat([blob.subarray(0, 8), frame]),
    what: `the name ${needle} in a RAW record changed to …file-5X.txt, re-encoded`,
  };
};

/**
 * Copies the bundle with LB's delta blob tampered, then fixes up the blob's digest and size
 * everywhere the old ones were (its entry name and size, the metadata's blob list and layer
 * entry), so every blob passes the bundle's size and sha256 checks: only the delta's own checks
 * can tell. The tar is rewritten entry by entry (same headers, but for the renamed entry).
 */
async function tamperedBundle(source: string, lb: string, tamper: Tamper, out: string): Promise<string> {
  const bundle = await readFile(source);
  const offsets = headerOffsets(bundle);
  const entries = tarEntries(bundle);
  assert.equal(entries.length, offsets.length, 'plain ustar entries, one header each');
  const metaEntry = entries.find((e) => e.name === 'ddiff-bundle.json');
  assert.ok(metaEntry, 'the bundle has ddiff-bundle.json');
  const metadata = JSON.parse(bundle.toString('utf8', metaEntry.offset, metaEntry.offset + metaEntry.size)) as Metadata;
  const old = layerBlob(metadata, lb);
  assert.ok(old?.delta, 'LB is a delta blob');
  const oldEntry = entries.find((e) => e.name === `blobs/sha256/${old.digest.slice(7)}`);
  assert.ok(oldEntry, `the bundle holds blobs/sha256/${old.digest.slice(7)}`);
  assert.equal(oldEntry.size, old.size);
  const { blob, what } = tamper(bundle.subarray(oldEntry.offset, oldEntry.offset + oldEntry.size));
  const oldDigest = old.digest;
  const digest = `sha256:${sha256Hex(blob)}`;
  for (const layer of metadata.images.flatMap((i) => i.layers)) if (layer.blob === oldDigest) layer.blob = digest;
  for (const b of metadata.blobs) {
    if (b.digest !== oldDigest) continue;
    b.digest = digest;
    b.size = blob.length;
  }
  const parts: Buffer[] = [];
  for (const [i, e] of entries.entries()) {
    const header = Buffer.from(bundle.subarray(offsets[i]!, offsets[i]! + 512));
    let data: Buffer = bundle.subarray(e.offset, e.offset + e.size);
    if (e === metaEntry) data = Buffer.from(JSON.stringify(metadata));
    if (e === oldEntry) {
      data = blob;
      header.fill(0, 0, 100);
      header.write(`blobs/sha256/${digest.slice(7)}`, 0, 100, 'utf8');
    }
    octal(header, 124, 12, data.length);
    fixChecksum(header);
    parts.push(header, data, padding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  await writeFile(out, Buffer.concat(parts));
  return what;
}

const tampered = once(async () => {
  const s = await scenario();
  const { delta } = await bundles();
  const dir = await freshDir('tampered');
  const variants = [
    { label: 'a compressed byte flipped', file: join(dir, 'flipped.ddiff'), tamper: flipByte(0.5), noFastPath: true },
    {
      label: 'a tar header byte changed, re-encoded as a valid zstd frame',
      file: join(dir, 'reencoded.ddiff'),
      tamper: reencodedHeaderByte,
      noFastPath: false,
    },
  ];
  return Promise.all(variants.map(async (v) => ({ ...v, what: await tamperedBundle(delta, s.lb, v.tamper, v.file) })));
});

test('4 a tampered delta blob (digest and size fixed up, so blob verification passes): load into Docker and load -o fail with one line naming the bundle; nothing loaded, no file', {
  timeout: 90_000,
}, async (t) => {
  if (!(await ready(t, [docker]))) return;
  const s = await baseInDocker();
  for (const v of await tampered()) {
    await t.test(`${v.label} (${v.what})`, async () => {
      // The blob checks pass: only the delta's own checks can catch it.
      await ok(['verify', v.file, '--base', s.baseArchive], { env: NO_ENGINE });
      await removeIfPresent(docker, s.target.id);
      await failsWithOneLine(['load', v.file], [v.file], { env: DOCKER_ENV });
      await assertNothingLoaded(docker, s);
      if (v.noFastPath) {
        await failsWithOneLine(['load', v.file, '--no-fast-path'], [v.file], { env: DOCKER_ENV });
        await assertNothingLoaded(docker, s);
      }
      const outDir = await freshDir('tampered-out');
      const out = join(outDir, 'out.tar');
      await failsWithOneLine(['load', v.file, '--base', s.baseArchive, '-o', out], [v.file], { env: NO_ENGINE });
      assert.deepEqual(await readdir(outDir), [], `load -o left nothing in ${outDir}`);
    });
  }
});

test('4 a base lacking the layer the delta reads (--base an unrelated archive: the error names LA; no base at all): load and load -o fail; nothing loaded, no file', {
  timeout: 60_000,
}, async (t) => {
  if (!(await ready(t, [docker]))) return;
  const s = await baseInDocker();
  const { delta } = await bundles();
  await removeIfPresent(docker, s.target.id);
  const line = await failsWithOneLine(['load', delta, '--base', s.unrelatedTar], [s.unrelatedTar, s.la], { env: DOCKER_ENV });
  assert.match(line, /lacks/, line);
  await assertNothingLoaded(docker, s);
  const outDir = await freshDir('missing-base-out');
  const out = join(outDir, 'out.tar');
  await failsWithOneLine(['load', delta, '--base', s.unrelatedTar, '-o', out], [s.unrelatedTar, s.la], { env: NO_ENGINE });
  assert.deepEqual(await readdir(outDir), [], `load -o left nothing in ${outDir}`);
  // And no engine, no --base: nothing to take LA from.
  // (It names neither the bundle nor LA, unlike the README's `ddiff: error: <file>: …`: only --base is checked here.)
  await failsWithOneLine(['load', delta, '-o', out], ['--base'], { env: NO_ENGINE });
  assert.deepEqual(await readdir(outDir), [], `load -o left nothing in ${outDir}`);
});

// ---------------------------------------------------------------------------------------------
// 5. A have-list with the base's file hashes: deltas without the base's bytes
// ---------------------------------------------------------------------------------------------

/** `have --files A.tar` (the offline host's side), then `diff --have` against it with no base bytes. */
const haveBundle = once(async () => {
  const s = await scenario();
  await bundles();
  const haveList = join(s.dir, 'have.json');
  await writeFile(haveList, await ok(['have', '--files', s.baseArchive, '--json'], { env: NO_ENGINE }));
  const bundle = join(s.dir, 'h.ddiff');
  const d = JSON.parse(await ok(['diff', '--have', haveList, s.targetTar, '-o', bundle, '--json'], { env: NO_ENGINE })) as DiffSummary;
  return { haveList, bundle, d };
});

test("5 have --files A.tar, then diff --have (no base bytes): LB refers to A's files by hash, ≤ 1/2 of --no-delta; load --base A.tar -o rebuilds the target", {
  timeout: 60_000,
}, async () => {
  const s = await scenario();
  const { whole } = await bundles();
  const { haveList, bundle, d } = await haveBundle();
  const list = JSON.parse(await readFile(haveList, 'utf8')) as { version: number; files?: string; images: { diffIds: string[] }[] };
  assert.equal(list.version, 2, 'a have-list with a file index is version 2');
  assert.ok(typeof list.files === 'string' && list.files.length > 0, 'it carries the file index');
  assert.deepEqual(list.images[0]!.diffIds, [s.la]);

  const lbBlob = layerBlob(d.metadata, s.lb);
  assert.ok(lbBlob?.delta, `LB is stored as a delta: ${JSON.stringify(lbBlob)}`);
  assert.deepEqual(lbBlob.delta.baseLayers, [s.la]);
  assert.deepEqual(d.metadata.base.needed, [s.la]);
  const { referenced, deltified } = lbBlob.delta.files;
  assert.equal(deltified, 0, 'no binary delta without the base bytes');
  // The unchanged text files, and the moved 2.5 MB file and the edited 3 MB one piece by piece.
  assert.ok(referenced >= 288, `files are references to A's by hash: ${JSON.stringify(lbBlob.delta.files)}`);
  const [hSize, wSize] = [(await stat(bundle)).size, (await stat(whole)).size];
  // Without A's bytes the edited pieces go literal: the 3 MB file's changed MiB is most of it.
  assert.ok(hSize * 2 <= wSize, `the have-list delta bundle (${hSize} B) is at most 1/2 of the --no-delta one (${wSize} B)`);

  const out = join(s.dir, 'h-out.tar');
  await ok(['load', bundle, '--base', s.baseArchive, '-o', out, '-q'], { env: NO_ENGINE });
  const listed = JSON.parse(await ok(['list', '--json', out], { env: NO_ENGINE })) as {
    images: { id: string; layers: { diffId: string }[] }[];
  };
  assert.equal(listed.images[0]!.id, s.target.id);
  assert.deepEqual(
    listed.images[0]!.layers.map((l) => l.diffId),
    s.target.diffIds,
  );
  console.log(
    `# have-list delta bundle ${hSize} B vs --no-delta ${wSize} B (1/${(wSize / hSize).toFixed(1)}); files ${JSON.stringify(lbBlob.delta.files)}`,
  );
});

test("5 the have-list bundle loads into Docker with only A there: the target's image ID and diffIDs", { timeout: 60_000 }, async (t) => {
  if (!(await ready(t, [docker]))) return;
  const s = await baseInDocker();
  const { bundle } = await haveBundle();
  await removeIfPresent(docker, s.target.id);
  await ok(['load', bundle, '-q'], { env: DOCKER_ENV });
  await assertSameImage(docker, s.target);
});

test('5 have --files with nothing named, or a registry image: a usage error, nothing written', { timeout: 60_000 }, async () => {
  for (const args of [
    ['have', '--files'],
    ['have', '--files', 'docker://127.0.0.1:1/x:1'],
  ]) {
    const r = await runDdiff(args, { env: NO_ENGINE });
    assert.equal(r.code, 2, `usage error (exit 2): ${show(r)}`);
    assert.equal(r.stdout, '', show(r));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${show(r)}`);
    assert.match(r.stderr, /have --files/, show(r));
  }
});
