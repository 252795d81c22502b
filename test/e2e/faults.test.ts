/**
 * The container engine failing in the middle of the work (issue 6): `docker save` killed after
 * some bytes or exiting with an error, `docker load` rejecting the archive after reading it or
 * at once without reading it. A fake `docker` first on PATH wraps the real one and misbehaves
 * for `save` or `load` only (FAKE_DOCKER_MODE). A diff's save of its target, which ddiff reads
 * from the Engine API where the daemon is on a local socket, is broken off by a proxy in front
 * of the real daemon's socket instead; the CLI's save is reached through a named context. ddiff
 * must report the engine's own message (or how it died) in one line, exit 125, and leave no
 * output or temporary file.
 *
 * Skipped with the reason when Docker does not answer; fails instead when
 * DDIFF_E2E_REQUIRE_ENGINES=1 or CI=true (as roundtrip.test.ts).
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliNodeOptions, cliPath, runCli, type CliResult } from '../helpers/cli.js';
import { docker, enginesRequired, randomContent, uniqueName, type ImageInfo } from './engines.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-faults-'));
const fakeBin = join(work, 'bin');

interface Images {
  base: string;
  target: string;
  baseInfo: ImageInfo;
  targetInfo: ImageInfo;
  baseTar: string;
  bundle: string;
}
let images: Images | undefined;
let unavailable: string | undefined;

/** The fake docker: passes everything to the real one, except what FAKE_DOCKER_MODE breaks. */
function fakeDocker(real: string): string {
  return `#!/bin/sh
REAL='${real}'
MODE="\${FAKE_DOCKER_MODE:-}"
if [ "$1" = save ] && [ -n "$MODE" ] && [ "\${MODE#save-}" != "$MODE" ]; then
  shift
  out=''
  refs=''
  while [ $# -gt 0 ]; do
    if [ "$1" = -o ]; then out="$2"; shift 2; else refs="$refs $1"; shift; fi
  done
  # The real save, cut after 30000 bytes.
  if [ -n "$out" ]; then "$REAL" save $refs | head -c 30000 > "$out"; else "$REAL" save $refs | head -c 30000; fi
  if [ "$MODE" = save-killed ]; then kill -9 $$; fi
  echo 'Error response from daemon: fake docker: the save broke off after 30000 bytes' >&2
  exit 1
fi
if [ "$1" = load ] && [ "$MODE" = load-reject ]; then
  cat > /dev/null
  echo 'Error processing tar file(exit status 1): unexpected EOF' >&2
  exit 1
fi
if [ "$1" = load ] && [ "$MODE" = load-refuse-at-once ]; then
  echo 'Error response from daemon: fake docker: load refused before reading' >&2
  exit 1
fi
exec "$REAL" "$@"
`;
}

before(async () => {
  unavailable = await docker.unavailableReason();
  if (unavailable !== undefined) return;
  const real = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
  await mkdir(fakeBin);
  await writeFile(join(fakeBin, 'docker'), fakeDocker(real));
  await chmod(join(fakeBin, 'docker'), 0o755);
  const base = uniqueName('faults-base');
  const target = uniqueName('faults-target');
  // 1 MiB and 2 MiB that gzip cannot shrink: the saves break off inside a layer, and the rebuilt
  // archive is much larger than a pipe buffer.
  const baseInfo = await docker.build(base, 'FROM scratch\nCOPY a.txt /a.txt\nCOPY base.bin /base.bin\n', {
    'a.txt': randomContent('a'),
    'base.bin': randomBytes(1 << 20),
  });
  const targetInfo = await docker.build(target, `FROM ${base}\nCOPY big.bin /big.bin\n`, { 'big.bin': randomBytes(2 << 20) });
  const baseTar = join(work, 'base.tar');
  await docker.save([base], baseTar);
  const bundle = join(work, 'app.ddiff');
  const r = await runCli(['diff', base, target, '-o', bundle, '--engine', 'docker']);
  assert.equal(r.code, 0, r.stderr);
  images = { base, target, baseInfo, targetInfo, baseTar, bundle };
});

after(async () => {
  await docker.cleanup();
  await rm(work, { recursive: true, force: true });
});

function needsDocker(t: TestContext): Images | undefined {
  if (unavailable !== undefined) {
    if (enginesRequired) throw new Error(`docker is required here (CI) but not available: ${unavailable}`);
    t.skip(`docker not available: ${unavailable}`);
    return undefined;
  }
  return images!;
}

/** Runs ddiff with the fake docker first on PATH, in a fresh directory with its own DDIFF_TMPDIR. */
async function withFakeDocker(
  mode: string,
  args: (dir: string) => string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ r: CliResult; dir: string; tmp: string }> {
  const dir = await mkdtemp(join(work, `${mode}-`));
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const r = await runCli(args(dir), {
    cwd: dir,
    env: { PATH: `${fakeBin}:${process.env.PATH}`, FAKE_DOCKER_MODE: mode, DDIFF_TMPDIR: tmp, DDIFF_ENGINE: 'docker', ...env },
  });
  return { r, dir, tmp };
}

const daemonSocket = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');

/**
 * The same daemon through a named Docker context: the CLI reaches it, and ddiff leaves every
 * call to the CLI (as for a remote daemon), so the fake docker's save is the one used.
 */
async function namedContext(): Promise<NodeJS.ProcessEnv> {
  const config = join(work, 'docker-config');
  const env = { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '' };
  const made = spawnSync('docker', ['context', 'create', 'faults', '--docker', `host=unix://${daemonSocket}`], { env, encoding: 'utf8' });
  if (made.status !== 0 && !/already exists/.test(made.stderr)) throw new Error(`docker context create: ${made.stderr}`);
  return { DOCKER_CONFIG: config, DOCKER_CONTEXT: 'faults', DOCKER_HOST: '' };
}

/**
 * A socket in front of the daemon's that passes everything through, except that the answer to
 * an image save (`GET /images/get`) is cut after `cutAfter` bytes (the daemon going away in the
 * middle of the stream), or stalls there (a slow daemon, for an interrupt to land in).
 */
async function cuttingProxy(cutAfter: number, how: 'cut' | 'stall' = 'cut'): Promise<{ host: string; close: () => Promise<void> }> {
  const path = join(work, `proxy-${Date.now()}.sock`);
  const open = new Set<Socket>();
  const proxy = createServer((client) => {
    const daemon = createConnection(daemonSocket);
    open.add(client).add(daemon);
    let cut = false;
    let passed = 0;
    client.on('data', (data) => {
      if (data.toString('latin1').startsWith('GET /images/get')) cut = true;
      daemon.write(data);
    });
    daemon.on('data', (data) => {
      if (!cut) return void client.write(data);
      const room = cutAfter - passed;
      passed += data.length;
      if (room > 0) client.write(data.subarray(0, room));
      if (passed >= cutAfter && how === 'stall') daemon.pause();
      else if (passed >= cutAfter) {
        client.destroy();
        daemon.destroy();
      }
    });
    for (const [a, b] of [
      [client, daemon],
      [daemon, client],
    ] as const) {
      a.on('close', () => b.destroy());
      a.on('error', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => proxy.listen(path, resolve));
  return {
    host: `unix://${path}`,
    close: () => {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}

/** Exit 125, one `ddiff: error:` line matching `message`, and nothing left in `dir` but `keep`. */
async function assertEngineFailure(
  run: { r: CliResult; dir: string; tmp: string },
  message: RegExp,
  keep: string[] = ['tmp'],
): Promise<void> {
  const { r, dir, tmp } = run;
  assert.equal(r.code, 125, `exit ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('warning: '));
  assert.equal(lines.length, 1, `one error line: ${r.stderr}`);
  assert.match(lines[0]!, /^ddiff: error: /);
  assert.match(lines[0]!, message);
  if (process.env.DDIFF_TEST_SHOW) console.log(lines[0]);
  assert.deepEqual((await readdir(dir)).sort(), keep, 'no output or temporary file left');
  assert.deepEqual(await readdir(tmp), [], 'DDIFF_TMPDIR is empty');
}

test("diff: the daemon's save stream (Engine API) broken off after 30000 bytes", { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const proxy = await cuttingProxy(30_000);
  try {
    const run = await withFakeDocker('api-save-cut', (dir) => ['diff', i.base, i.target, '-o', join(dir, 'app.ddiff')], {
      DOCKER_HOST: proxy.host,
    });
    await assertEngineFailure(
      run,
      /^ddiff: error: docker save \S*faults-target\S* failed: the connection closed after \d+ bytes of the answer$/,
    );
  } finally {
    await proxy.close();
  }
});

test("diff: interrupted (SIGINT) while the daemon's save streams: exit 130, no output, no spool left", { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const proxy = await cuttingProxy(30_000, 'stall');
  const dir = await mkdtemp(join(work, 'api-save-interrupted-'));
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  try {
    const child = spawn(process.execPath, [...cliNodeOptions, cliPath, 'diff', i.base, i.target, '-o', join(dir, 'app.ddiff')], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', DDIFF_TMPDIR: tmp, DDIFF_ENGINE: 'docker', DOCKER_HOST: proxy.host },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const exited = once(child, 'close') as Promise<[number | null]>;
    const spooling = async () => (await readdir(tmp, { recursive: true })).some((name) => name.endsWith('.spool'));
    for (const deadline = Date.now() + 60_000; !(await spooling()); ) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the save never started spooling: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted \(SIGINT\)/);
    assert.deepEqual((await readdir(dir)).sort(), ['tmp'], 'no output left');
    assert.deepEqual(await readdir(tmp), [], 'no spool left');
  } finally {
    await proxy.close();
  }
});

test('diff through the CLI (a named context): docker save killed (SIGKILL) after 30000 bytes', { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('save-killed', (dir) => ['diff', i.base, i.target, '-o', join(dir, 'app.ddiff')], await namedContext());
  await assertEngineFailure(run, /docker save .*failed: killed by SIGKILL/);
});

test('diff through the CLI (a named context): docker save exits 1 after 30000 bytes: its own message', { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('save-error', (dir) => ['diff', i.base, i.target, '-o', join(dir, 'app.ddiff')], await namedContext());
  await assertEngineFailure(run, /fake docker: the save broke off after 30000 bytes/);
});

test('load (full rebuild from the engine base): docker save streaming the base killed', { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('save-killed', (dir) => ['load', i.bundle, '--no-fast-path', '-o', join(dir, 'app.tar')]);
  await assertEngineFailure(run, /docker save .*failed: killed by SIGKILL/);
});

test('load (full rebuild from the engine base): docker save streaming the base exits 1: its own message', {
  timeout: 180_000,
}, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('save-error', (dir) => ['load', i.bundle, '--no-fast-path', '-o', join(dir, 'app.tar')]);
  await assertEngineFailure(run, /fake docker: the save broke off after 30000 bytes/);
});

test('load: docker load reads the archive, then rejects it: its own message', { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('load-reject', () => ['load', i.bundle, '--base', i.baseTar]);
  await assertEngineFailure(run, /docker load failed: Error processing tar file\(exit status 1\): unexpected EOF/);
});

test('load: docker load refuses at once without reading (no hang, no silent success)', { timeout: 180_000 }, async (t) => {
  const i = needsDocker(t);
  if (!i) return;
  const run = await withFakeDocker('load-refuse-at-once', () => ['load', i.bundle, '--base', i.baseTar]);
  await assertEngineFailure(run, /docker load failed: Error response from daemon: fake docker: load refused before reading/);
});
