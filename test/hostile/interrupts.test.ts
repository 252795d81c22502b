// Interrupts and faults: SIGINT/SIGTERM in the middle of `diff` and `load -o` (exit 130/143,
// nothing under the output name, no temporary files), a full disk (a 2 MiB tmpfs as the output
// directory and as DDIFF_TMPDIR: one line saying "no space left on device", exit 1, no partial
// bundle), and concurrent `diff` runs in one directory.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { cliNodeOptions, cliPath, fixturesDir, runCli } from '../helpers/cli.js';
import { makeDockerArchive, makeTar } from '../helpers/tar.js';
import { errorLine, listTree } from './harness.js';

const base = join(fixturesDir, 'docker-base.tar');
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ddiff-hostile-faults-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A tar header block for a regular file. */
function header(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.fill(0x20, 148, 156);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
const padding = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/**
 * Writes a docker-archive with one uncompressed layer of `mib` MiB that gzip cannot shrink (a
 * random MiB, varied per copy), streaming: nothing of that size is held in memory.
 */
async function bigArchive(path: string, mib: number): Promise<void> {
  const out = createWriteStream(path);
  const write = async (b: Buffer) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  const layerHash = createHash('sha256');
  const inner = mib << 20;
  const layerSize = 512 + inner + 1024;
  await write(header('l0/layer.tar', layerSize));
  const innerHeader = header('big.bin', inner);
  layerHash.update(innerHeader);
  await write(innerHeader);
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < mib; i++) {
    chunk.writeUInt32BE(i, 0);
    layerHash.update(chunk);
    await write(chunk);
  }
  const end = Buffer.alloc(1024);
  layerHash.update(end);
  await write(end);
  await write(padding(layerSize));
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerHash.digest('hex')}`] },
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const manifest = JSON.stringify([{ Config: configName, RepoTags: ['hostile/big:1'], Layers: ['l0/layer.tar'] }]);
  for (const [name, text] of [
    [configName, config],
    ['manifest.json', manifest],
  ] as const) {
    await write(header(name, text.length));
    await write(Buffer.from(text));
    await write(padding(text.length));
  }
  out.end(Buffer.alloc(1024));
  await once(out, 'finish');
}

/** Polls until `check` is true (every 10 ms, at most `ms`). */
async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Any file under `root` (recursively) with at least `bytes` bytes, matching `pattern`. */
async function hasFile(root: string, pattern: RegExp, bytes = 1): Promise<boolean> {
  for (const name of await listTree(root).catch(() => [])) {
    if (!pattern.test(name)) continue;
    const info = await stat(join(root, name)).catch(() => undefined);
    if (info?.isFile() && info.size >= bytes) return true;
  }
  return false;
}

/** Starts the CLI, waits for `ready`, sends `signal`; resolves with the exit code and stderr. */
async function interrupt(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [...cliNodeOptions, cliPath, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let finishedEarly = false;
  void exited.then(() => (finishedEarly = true));
  try {
    await waitFor(async () => finishedEarly || (await ready()), 60_000, `ddiff ${args[0]} to get going`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  assert.ok(!finishedEarly, `ddiff ${args.join(' ')} finished before it could be interrupted: ${stderr}`);
  child.kill(signal);
  const [code, sig] = await exited;
  return { code, signal: sig, stderr, ms: Date.now() - started };
}

describe('interrupted by SIGINT / SIGTERM', () => {
  let big = '';
  let bigBundle = '';
  before(async () => {
    big = join(dir, 'big.tar');
    await bigArchive(big, 300);
    bigBundle = join(dir, 'big.ddiff');
    const r = await runCli(['diff', base, big, '--compress', 'none', '-o', bigBundle]);
    assert.equal(r.code, 0, r.stderr);
  });

  const cases = [
    { name: 'diff, SIGINT while a layer is being compressed', signal: 'SIGINT', code: 130, command: 'diff', extra: [], phase: 'staging' },
    {
      name: 'diff, SIGTERM while the bundle is being written',
      signal: 'SIGTERM',
      code: 143,
      command: 'diff',
      extra: ['--compress', 'none'],
      phase: 'output',
    },
    { name: 'load -o, SIGINT while the image is being written', signal: 'SIGINT', code: 130, command: 'load', extra: [], phase: 'output' },
    {
      name: 'load -o, SIGTERM while the image is being written',
      signal: 'SIGTERM',
      code: 143,
      command: 'load',
      extra: [],
      phase: 'output',
    },
  ] as const;

  for (const c of cases) {
    test(c.name, { timeout: 120_000 }, async (t) => {
      const work = await mkdtemp(join(dir, 'sig-'));
      const tmp = join(work, 'tmp');
      const out = join(work, 'out');
      await mkdir(tmp);
      await mkdir(out);
      const output = join(out, c.command === 'diff' ? 'big.ddiff' : 'big.tar');
      const args = c.command === 'diff' ? ['diff', base, big, ...c.extra, '-o', output] : ['load', bigBundle, '-o', output];
      const ready = c.phase === 'staging' ? () => hasFile(tmp, /./, 1 << 20) : () => hasFile(out, /^\.big\..*\.tmp$/, 1 << 20);
      const r = await interrupt(args, { DDIFF_TMPDIR: tmp }, ready, c.signal);
      t.diagnostic(`${c.signal} after ${r.ms} ms`);
      assert.equal(r.code, c.code, `exit ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`interrupted \\(${c.signal}\\)`));
      assert.deepEqual(await listTree(out), [], 'nothing under the output name, no .*.tmp beside it');
      assert.deepEqual(await listTree(tmp), [], 'no temporary files left in DDIFF_TMPDIR');
    });
  }
});

describe('a full disk (2 MiB tmpfs)', () => {
  let small = ''; // a tmpfs of 2 MiB
  let mounted = false;
  let whyNot = '';
  let target = ''; // base + one 4 MiB layer gzip cannot shrink
  let bundle = '';
  let bigBase = ''; // a base whose 4 MiB layer load -o copies from the archive (on the hashing thread)
  let onBigBase = '';
  before(async () => {
    small = await mkdtemp(join(dir, 'tmpfs-'));
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small], { encoding: 'utf8' });
    mounted = m.status === 0;
    whyNot = mounted ? '' : `mount -t tmpfs is not permitted here (${(m.stderr || m.error?.message || `exit ${m.status}`).trim()})`;
    const layers = [await makeTar([{ name: 'random.bin', content: randomBytes(4 << 20) }])];
    target = join(dir, 'target-4m.tar');
    await writeFile(target, (await makeDockerArchive(layers, { tag: 'hostile/disk:1' })).archive);
    bundle = join(dir, 'target-4m.ddiff');
    const r = await runCli(['diff', base, target, '-o', bundle]);
    assert.equal(r.code, 0, r.stderr);
    const appLayer = await makeTar([{ name: 'app.txt', content: 'app' }]);
    bigBase = join(dir, 'base-4m.tar');
    await writeFile(bigBase, (await makeDockerArchive(layers, { tag: 'hostile/base4m:1' })).archive);
    const onTop = join(dir, 'on-4m.tar');
    await writeFile(onTop, (await makeDockerArchive([...layers, appLayer], { tag: 'hostile/on4m:1' })).archive);
    onBigBase = join(dir, 'on-4m.ddiff');
    const d = await runCli(['diff', bigBase, onTop, '-o', onBigBase]);
    assert.equal(d.code, 0, d.stderr);
  });
  after(() => {
    if (mounted) spawnSync('umount', [small]);
  });

  async function full(t: TestContext, args: (disk: string) => string[], tmpOnDisk: boolean, stdinFile?: string): Promise<void> {
    if (!mounted) {
      t.skip(whyNot);
      return;
    }
    const disk = join(small, `t${randomBytes(3).toString('hex')}`);
    await mkdir(disk);
    const elsewhere = await mkdtemp(join(dir, 'tmp-'));
    const tmp = tmpOnDisk ? disk : elsewhere;
    const cwd = await mkdtemp(join(dir, 'cwd-'));
    const r = await runCli(args(disk), { env: { DDIFF_TMPDIR: tmp }, cwd, ...(stdinFile ? { stdin: createReadStream(stdinFile) } : {}) });
    assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
    assert.match(errorLine(r), /no space left on device/);
    assert.deepEqual(await listTree(disk), [], 'nothing left on the full disk (no partial output, no temporary file)');
    assert.deepEqual(await listTree(elsewhere), [], 'nothing left in DDIFF_TMPDIR');
    assert.deepEqual(await listTree(cwd), [], 'nothing left in the working directory');
    await rm(disk, { recursive: true, force: true });
  }

  test('diff with DDIFF_TMPDIR on the full disk (the layer is staged there)', async (t) => {
    await full(t, () => ['diff', base, target, '-o', join(dir, 'never.ddiff')], true);
    assert.ok(!existsSync(join(dir, 'never.ddiff')));
  });
  test('diff -o onto the full disk', async (t) => {
    await full(t, (disk) => ['diff', base, target, '-o', join(disk, 'app.ddiff')], false);
  });
  test('load -o onto the full disk', async (t) => {
    await full(t, (disk) => ['load', bundle, '--base', base, '-o', join(disk, 'app.tar')], false);
  });
  test('load -o onto the full disk, the big layer copied from the base archive', async (t) => {
    await full(t, (disk) => ['load', onBigBase, '--base', bigBase, '-o', join(disk, 'app.tar')], false);
  });
  test('load - (stdin) with DDIFF_TMPDIR on the full disk (the bundle is spooled there)', async (t) => {
    await full(t, () => ['load', '-', '--base', base, '-o', join(dir, 'never.tar')], true, bundle);
    assert.ok(!existsSync(join(dir, 'never.tar')));
  });
});

describe('concurrent diff runs in one directory', () => {
  let target = '';
  before(async () => {
    target = join(dir, 'target-16m.tar');
    await bigArchive(target, 16);
  });

  async function twoRuns(outputs: [string | undefined, string | undefined]): Promise<{ cwd: string; tmp: string }> {
    const cwd = await mkdtemp(join(dir, 'concurrent-'));
    const tmp = join(cwd, '..', `${cwd.split('/').pop()}-tmp`);
    await mkdir(tmp);
    const runs = await Promise.all(
      outputs.map((o) => runCli(['diff', base, target, ...(o ? ['-o', o] : [])], { cwd, env: { DDIFF_TMPDIR: tmp } })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await listTree(tmp), [], 'no temporary files left');
    return { cwd, tmp };
  }

  test('different outputs: both succeed and both bundles verify', async () => {
    const { cwd } = await twoRuns(['a.ddiff', 'b.ddiff']);
    assert.deepEqual(await readdir(cwd).then((n) => n.sort()), ['a.ddiff', 'b.ddiff']);
    for (const name of ['a.ddiff', 'b.ddiff']) {
      const v = await runCli(['verify', join(cwd, name), '--base', base]);
      assert.equal(v.code, 0, v.stderr);
    }
  });

  test('the same (default) output name: both succeed, the survivor is a valid bundle, no temporary file left', async () => {
    const { cwd } = await twoRuns([undefined, undefined]);
    assert.deepEqual(await readdir(cwd), ['big_1.ddiff']);
    const v = await runCli(['verify', join(cwd, 'big_1.ddiff'), '--base', base]);
    assert.equal(v.code, 0, v.stderr);
  });
});
