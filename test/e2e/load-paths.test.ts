/**
 * End-to-end tests of the load-path defects of issue 9, through real engines (no fakes):
 *
 * 1. A full-rebuild load into Docker that fails once `docker load` is running exits within 10 s
 *    of the failure and leaves no `docker load` behind. (1a) the base's `docker save` fails: the
 *    test deletes a file of the base's top layer in the daemon's own storage (vfs/overlay2 of a
 *    local daemon), so the daemon fails the save, as it would on a damaged disk; (1b) a layer of
 *    a `--base` archive is corrupt, found at the end of that layer while it streams. The Docker
 *    28 CLI treats a SIGTERM as "cancel" and does not exit while it waits for input (only a
 *    SIGTERM in its first ~15 ms, or three of them, kill it): a sink that sends one SIGTERM and
 *    never ends its input hangs. The 20.10 CLI dies at the first SIGTERM.
 * 2. SIGTERM to the ddiff process alone (not its group) during a load of a 200 MB layer: exit
 *    143, no `docker load` running 1 s after ddiff exited, and no image in Docker 8 s after the
 *    signal (or, if a `docker load` still runs then, once it has ended; at most 40 s). (2a) while the archive is still being sent; (2b) once `docker load` has read all of
 *    it and the daemon is still loading it. Once the daemon has the whole archive, stopping the
 *    CLI (SIGTERM or SIGKILL) does not stop the daemon: the image appears anyway.
 * 3. Base layers whose tar starts with `{` (an imported rootfs whose first entry is the directory
 *    `{{cookiecutter.slug}}`) and 0-byte base layers (`docker import` of an empty file) survive a
 *    full rebuild: Docker with --no-fast-path, Podman, and `-o`.
 * 4. A `diff --have` bundle whose base layers are spread over several local images
 *    (b1 = [L1], b2 = [L4, L2], target = [L1, L2, L3]) loads, into Docker and into Podman.
 * 5. A gzip- or zstd-compressed bundle loads, and `-o` from it works.
 * 6. `load -o` with the base only in Docker, only in Podman, from `--base ARCHIVE`, from stdin
 *    and with --no-fast-path writes an archive that `ddiff list`, `skopeo inspect` and `skopeo
 *    copy` (docker-archive: and oci-archive:…:TAG; inspect reads no layer blob, copy reads all)
 *    and `docker load` all read, with the target's image ID.
 *
 * Docker tests in which ddiff runs `docker load` / `docker save` run once per docker CLI: the
 * newest found (≥ 23; 28.x here) and 20.10, chosen with a directory holding a `docker` symlink
 * put first on PATH (candidates: DDIFF_E2E_DOCKER_CLIS, colon-separated, else
 * /usr/local/bin/docker, /usr/bin/docker and `docker` on PATH). A CLI that is not installed
 * skips its variant with a message (the CI machine of .ci/run has only docker.io's 20.10).
 * Engines and skopeo that do not answer skip their tests with the reason, and fail them instead
 * when DDIFF_E2E_REQUIRE_ENGINES=1 or CI=true.
 *
 * Images are built FROM scratch, imported from tars the test writes, or loaded from docker-save
 * archives the test writes (same tar bytes = same diffID); every one is unique to the run
 * (random contents, `ddiff-e2e-<random>/…` names) and removed in `after`. Every `docker load`
 * that a ddiff run started and left behind is killed by its pid.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { cliNodeOptions, cliPath, repoRoot } from '../helpers/cli.js';
import { sha256Hex } from '../helpers/tar.js';
import { docker, enginesRequired, podman, randomContent, uniqueName, type ImageInfo, type TestEngine } from './engines.js';
import { DOCKER_ENV, freshDirs, NO_ENGINE, once, PODMAN_ENV, ready, type RunOutcome, show } from './support.js';
import { padding, type TarEntry, tarHeader, tarOf as tarOfEntries } from './support.js';
import { assertSameImage, type Crafted, loadCrafted, removeIfPresent, writeDockerArchive } from './support.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-load-paths-'));

/** Processes (ddiff runs' `docker load` children) to kill by pid if a test leaves them. */
const leftovers = new Set<TrackedProc>();

after(async () => {
  for (const p of leftovers) killIfAlive(p);
  await docker.cleanup();
  await podman.cleanup();
  await rm(work, { recursive: true, force: true });
});

const EMPTY_DIFF_ID = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** A fresh directory under the run's work directory. */
const freshDir = freshDirs(work);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Docker CLIs
// ---------------------------------------------------------------------------------------------

interface DockerCli {
  /** The CLI's version, e.g. `28.2.2`. */
  version: string;
  path: string;
  /** A directory holding only a `docker` symlink to `path`: put first on PATH. */
  bin: string;
}

/** The docker CLIs to run ddiff with: the newest (≥ 23, the one that cancels on SIGTERM) and 20.10. */
async function findDockerClis(): Promise<{ modern?: DockerCli; legacy?: DockerCli; tried: string[] }> {
  const onPath = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
  const candidates = process.env.DDIFF_E2E_DOCKER_CLIS
    ? process.env.DDIFF_E2E_DOCKER_CLIS.split(':').filter(Boolean)
    : ['/usr/local/bin/docker', '/usr/bin/docker', ...(onPath ? [onPath] : [])];
  const seen = new Set<string>();
  const found: { path: string; version: string; major: number }[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const real = realpathSync(path);
    if (seen.has(real)) continue;
    seen.add(real);
    const out = spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout ?? '';
    const match = /version v?(\d+)\.(\d+)\.?([0-9A-Za-z.+~-]*)/.exec(out);
    if (!match) continue;
    found.push({ path, version: `${match[1]}.${match[2]}${match[3] ? `.${match[3]}` : ''}`, major: Number(match[1]) });
  }
  const withBin = async (c: { path: string; version: string } | undefined): Promise<DockerCli | undefined> => {
    if (!c) return undefined;
    const bin = join(work, `docker-cli-${c.version.replace(/[^0-9A-Za-z.]/g, '_')}`);
    await mkdir(bin, { recursive: true });
    await symlink(c.path, join(bin, 'docker'));
    return { version: c.version, path: c.path, bin };
  };
  const modern = found.filter((c) => c.major >= 23).sort((a, b) => b.major - a.major)[0];
  const legacy = found.find((c) => c.major === 20);
  return { modern: await withBin(modern), legacy: await withBin(legacy), tried: candidates };
}

const clis = await findDockerClis();
const CLI_VARIANTS: { label: string; cli: DockerCli | undefined; wanted: string }[] = [
  {
    label: clis.modern ? `docker CLI ${clis.modern.version}` : 'docker CLI ≥ 23',
    cli: clis.modern,
    wanted: 'a docker CLI ≥ 23 (e.g. 28.x)',
  },
  { label: clis.legacy ? `docker CLI ${clis.legacy.version}` : 'docker CLI 20.10', cli: clis.legacy, wanted: 'the docker 20.10 CLI' },
];

/** The CLI of a variant, or a skip (never a failure: CI machines may have only one CLI). */
function cliOrSkip(t: TestContext, variant: (typeof CLI_VARIANTS)[number]): DockerCli | undefined {
  if (variant.cli) return variant.cli;
  t.skip(`${variant.wanted} is not installed (tried ${clis.tried.join(', ')}; set DDIFF_E2E_DOCKER_CLIS)`);
  return undefined;
}

/** Environment for ddiff: Docker as the engine, through the given CLI when one is given. */
function dockerEnv(cli?: DockerCli): NodeJS.ProcessEnv {
  return {
    ...DOCKER_ENV,
    ...(cli ? { PATH: `${cli.bin}:${process.env.PATH ?? ''}` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Running ddiff while watching the processes it starts
// ---------------------------------------------------------------------------------------------

interface TrackedProc {
  pid: number;
  /** Start time (field 22 of /proc/PID/stat): tells the process from a later one with its pid. */
  start: string;
  /** Its command line, last read while it was alive (re-read: a fork shows its parent's until exec). */
  argv: string[];
  /** When the watcher first saw it, and first saw it gone. */
  seenAt: number;
  goneAt?: number;
}

function procStat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]), start: rest[19]! };
  } catch {
    return undefined;
  }
}

function procArgv(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True while the process runs (a zombie has finished). */
function isAlive(p: TrackedProc): boolean {
  const s = procStat(p.pid);
  return s !== undefined && s.start === p.start && s.state !== 'Z' && s.state !== 'X';
}

function isDocker(p: TrackedProc, command: string): boolean {
  return basename(p.argv[0] ?? '') === 'docker' && p.argv[1] === command;
}

function isDockerLoad(p: TrackedProc): boolean {
  return isDocker(p, 'load');
}

function killIfAlive(p: TrackedProc): void {
  if (!isAlive(p)) return;
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Bytes a process has read so far (`rchar` of /proc/PID/io); -1 when it is gone. */
function bytesRead(pid: number): number {
  try {
    const match = /rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return match ? Number(match[1]) : -1;
  } catch {
    return -1;
  }
}

interface Outcome extends RunOutcome {
  /** The `docker load` children still running when ddiff's exit was seen (or when the test killed it). */
  loadsAliveAtExit: TrackedProc[];
}

interface Watched {
  child: ChildProcess;
  pid: number;
  done: Promise<Outcome>;
  /** The `docker load` processes ddiff started so far. */
  dockerLoads(): TrackedProc[];
  /** Every child process of ddiff seen so far. */
  children(): TrackedProc[];
  /** Kills ddiff (SIGKILL) as over its time limit: the outcome says timedOut. */
  expire(): void;
}

/**
 * Starts the built CLI (no shell, no wrapper: the pid is ddiff's own) and watches its direct
 * children every 20 ms. After `limitMs` ddiff is killed with SIGKILL (reported as timedOut).
 */
function startDdiff(args: string[], options: { env?: NodeJS.ProcessEnv; stdinFile?: string; limitMs?: number } = {}): Watched {
  const stdinFd = options.stdinFile ? openSync(options.stdinFile, 'r') : undefined;
  const started = Date.now();
  const child = spawn(process.execPath, [...cliNodeOptions, cliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: [stdinFd ?? 'ignore', 'pipe', 'pipe'],
  });
  if (stdinFd !== undefined) closeSync(stdinFd);
  const pid = child.pid!;
  const children = new Map<string, TrackedProc>();
  const scan = () => {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const s = procStat(Number(name));
      if (!s || s.ppid !== pid) continue;
      const key = `${name}:${s.start}`;
      if (!children.has(key)) children.set(key, { pid: Number(name), start: s.start, argv: [], seenAt: Date.now() });
    }
    for (const p of children.values()) {
      if (!isAlive(p)) {
        p.goneAt ??= Date.now();
        continue;
      }
      const argv = procArgv(p.pid);
      if (argv) p.argv = argv;
      if (isDockerLoad(p)) leftovers.add(p);
    }
  };
  const timer = setInterval(scan, 20);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  let timedOut = false;
  let aliveWhenKilled: TrackedProc[] | undefined;
  const dockerLoads = () => [...children.values()].filter(isDockerLoad);
  const expire = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    timedOut = true;
    aliveWhenKilled = dockerLoads().filter(isAlive);
    child.kill('SIGKILL');
  };
  const limit = setTimeout(expire, options.limitMs ?? 120_000);
  const done = new Promise<Outcome>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const elapsedMs = Date.now() - started;
      clearTimeout(limit);
      clearInterval(timer);
      const loadsAliveAtExit = aliveWhenKilled ?? dockerLoads().filter(isAlive);
      // 'close' waits for stdout/stderr, which a leftover child may hold open: do not wait for it.
      setTimeout(() => resolve({ code, signal, stdout, stderr, elapsedMs, timedOut, loadsAliveAtExit }), 50);
    });
  });
  return { child, pid, done, dockerLoads, children: () => [...children.values()], expire };
}

async function runDdiff(args: string[], options: { env?: NodeJS.ProcessEnv; stdinFile?: string; limitMs?: number } = {}): Promise<Outcome> {
  return startDdiff(args, options).done;
}

/** ddiff succeeds (exit 0) within the limit; resolves with its stdout. */
async function ok(args: string[], options: { env?: NodeJS.ProcessEnv; stdinFile?: string; limitMs?: number } = {}): Promise<string> {
  const r = await runDdiff(args, { limitMs: 60_000, ...options });
  for (const p of r.loadsAliveAtExit) killIfAlive(p);
  assert.ok(!r.timedOut && r.code === 0, `ddiff ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

/** Describes the `docker load` processes of a run still alive now. */
function aliveLoads(run: Watched): string[] {
  return run
    .dockerLoads()
    .filter(isAlive)
    .map((p) => `pid ${p.pid} (${p.argv.join(' ')})`);
}

// ---------------------------------------------------------------------------------------------
// Images: tar and docker-archive writers, engine helpers
// ---------------------------------------------------------------------------------------------

/** An uncompressed tar in memory: directories (names ending in `/`) and files, in this order (mtime 0). */
function tarOf(entries: [name: string, content?: Buffer | string][]): Buffer {
  return tarOfEntries(
    entries.map(
      ([name, content]): TarEntry =>
        name.endsWith('/')
          ? { name, type: 'dir', mode: 0o755, mtime: 0 }
          : { name, type: 'file', mode: 0o644, mtime: 0, content: typeof content === 'string' ? Buffer.from(content) : content },
    ),
  );
}

/** A layer tar of one file, in memory, with random contents. */
function smallLayer(label: string): Buffer {
  return tarOf([[`${label}.txt`, randomContent(label)]]);
}

/** A layer tar of one file of `size` random bytes, written to `path` in chunks; its diffID. */
async function writeBigLayer(path: string, size: number): Promise<{ diffId: string; size: number }> {
  const handle = await open(path, 'w');
  const hash = createHash('sha256');
  const put = async (chunk: Buffer) => {
    hash.update(chunk);
    await handle.write(chunk);
  };
  try {
    await put(tarHeader({ name: 'big.bin', type: 'file', mode: 0o644, mtime: 0 }, size));
    const chunk = Buffer.allocUnsafe(8 << 20);
    for (let done = 0; done < size; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, size - done));
      randomFillSync(part);
      await put(part);
    }
    await put(padding(size));
    await put(Buffer.alloc(1024));
  } finally {
    await handle.close();
  }
  return { diffId: `sha256:${hash.digest('hex')}`, size: 512 + size + padding(size).length + 1024 };
}

const files = (...names: string[]) => Object.fromEntries(names.map((n) => [n, randomContent(n)]));

/** A small base (2 COPY layers) and a target FROM it with one more, built in Docker. */
async function dockerBasePlusOne(): Promise<{ base: string; target: string; baseInfo: ImageInfo; targetInfo: ImageInfo }> {
  const base = uniqueName('lp-base');
  const target = uniqueName('lp-target');
  const baseInfo = await docker.build(base, 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n', files('a.txt', 'b.txt'));
  const targetInfo = await docker.build(target, `FROM ${base}\nCOPY c.txt /c.txt\n`, files('c.txt'));
  assert.deepEqual(targetInfo.diffIds.slice(0, 2), baseInfo.diffIds);
  return { base, target, baseInfo, targetInfo };
}

/** `docker import` of a tar file the test wrote; the image is tracked for cleanup. */
async function dockerImport(tarFile: string, tag: string): Promise<ImageInfo> {
  docker.track(tag);
  await docker.must(['import', tarFile, tag]);
  const info = await docker.inspect(tag);
  assert.ok(info, `docker has ${tag} after import`);
  docker.track(info.id);
  return info;
}

interface DiffSummary {
  included: number;
  metadata: { images: { id: string; tags: string[]; layers: { diffId: string; blob?: string }[] }[] };
}

async function diffJson(args: string[], env: NodeJS.ProcessEnv): Promise<DiffSummary> {
  return JSON.parse(await ok(['diff', ...args, '--json'], { env })) as DiffSummary;
}

/**
 * Damages the daemon's own copy of an image's top layer: deletes `file` from the layer's
 * directory in the storage driver (vfs or overlay2 of a local daemon, as scripts/engines.sh
 * runs). `docker save` of the image then fails with the daemon's own error before it writes a
 * byte (Docker 20.10 stages the whole save first). Resolves with why it cannot, if it cannot.
 */
async function damageTopLayer(image: ImageInfo, file: string): Promise<string | undefined> {
  const info = JSON.parse(await docker.must(['info', '--format', '{{json .}}'])) as { DockerRootDir?: string; Driver?: string };
  const root = info.DockerRootDir ?? '';
  const driver = info.Driver ?? '';
  let chain = image.diffIds[0]!;
  for (const diffId of image.diffIds.slice(1)) chain = `sha256:${sha256Hex(`${chain} ${diffId}`)}`;
  const cacheIdFile = join(root, 'image', driver, 'layerdb', 'sha256', chain.slice(7), 'cache-id');
  if (!existsSync(cacheIdFile)) return `the daemon's layer store is not readable here (${cacheIdFile}; driver ${driver})`;
  const cacheId = (await readFile(cacheIdFile, 'utf8')).trim();
  const dir =
    driver === 'vfs' ? join(root, 'vfs', 'dir', cacheId) : driver === 'overlay2' ? join(root, 'overlay2', cacheId, 'diff') : undefined;
  if (!dir || !existsSync(join(dir, file)))
    return `no ${file} in the layer directory of storage driver ${driver} (${dir ?? 'unknown layout'})`;
  await rm(join(dir, file));
  const save = await docker.run(['save', image.id]);
  if (save.code === 0) return `docker save still succeeds after ${join(dir, file)} was deleted`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// 1. A failed full-rebuild load into Docker: exit within 10 s, no `docker load` left
// ---------------------------------------------------------------------------------------------

/**
 * A base of a 64 MiB layer and a small one (crafted, loaded into Docker) whose small top layer is
 * then damaged in the daemon's storage, and the bundle of a target adding one layer (diffed from
 * archives that are then deleted, so the load must take the base from Docker). The base's
 * `docker save` stages the big layer first and then fails ("no such file or directory"): about
 * a second after the load began, long after the docker CLI has set up its signal handling (a
 * SIGTERM in its first ~15 ms still kills it the default way, which would hide the hang).
 */
const failingSaveSetup = once(async () => {
  const dir = await freshDir('failing-save');
  const big = join(dir, 'big-layer.tar');
  const bigLayer = await writeBigLayer(big, 64 << 20);
  const la = smallLayer('a');
  const lc = smallLayer('c');
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  const bigRef = { file: big, diffId: bigLayer.diffId, size: bigLayer.size };
  const [base] = await writeDockerArchive(baseTar, [{ tag: uniqueName('lp-damaged-base'), layers: [bigRef, { data: la }] }]);
  const [target] = await writeDockerArchive(targetTar, [
    { tag: uniqueName('lp-damaged-target'), layers: [bigRef, { data: la }, { data: lc }] },
  ]);
  docker.track(target!.id);
  docker.track(target!.tag);
  await loadCrafted(docker, baseTar, [base!]);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1);
  await Promise.all([rm(big), rm(baseTar), rm(targetTar)]);
  const cannot = await damageTopLayer({ id: base!.id, tags: [base!.tag], diffIds: base!.diffIds }, 'a.txt');
  return { bundle, target: target!, cannot };
});

/** A base archive whose (uncompressed, 4 MiB) second layer has one byte flipped near its end. */
const corruptArchiveSetup = once(async () => {
  const dir = await freshDir('corrupt-base');
  const la = smallLayer('a');
  const lb = tarOf([['b.bin', randomBytes(4 << 20)]]);
  const lc = smallLayer('c');
  const baseTag = uniqueName('lp-archive-base');
  const targetTag = uniqueName('lp-archive-target');
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  await writeDockerArchive(baseTar, [{ tag: baseTag, layers: [{ data: la }, { data: lb }] }]);
  const [target] = await writeDockerArchive(targetTar, [{ tag: targetTag, layers: [{ data: la }, { data: lb }, { data: lc }] }]);
  docker.track(target!.id);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1);
  const bytes = await readFile(baseTar);
  const at = bytes.indexOf(lb);
  assert.ok(at > 0, 'layer b in the base archive');
  bytes[at + lb.length - 1024 - 4000] ^= 0x01;
  const corrupt = join(dir, 'base-corrupt.tar');
  await writeFile(corrupt, bytes);
  return { bundle, corrupt, target: target! };
});

/** Runs a load that must fail, with a 10 s limit; checks exit, time and `docker load` processes. */
/**
 * Runs a load that must fail. It must exit within 10 s of the failure, timed from the moment its
 * `docker save` child exited (the daemon failing the save) or, when it runs no save, from the
 * start of its `docker load` (not from ddiff's start: on a busy machine the steps before the
 * load can take seconds). Also checks the exit code, the message, the `docker load` processes
 * and that nothing was loaded.
 */
async function assertFailsPromptly(
  t: TestContext,
  args: string[],
  env: NodeJS.ProcessEnv,
  message: RegExp,
  targetId: string,
): Promise<void> {
  const run = startDdiff(args, { env, limitMs: 90_000 });
  const started = Date.now();
  let failedAt: number | undefined;
  for (;;) {
    const finished = await Promise.race([run.done.then(() => true), sleep(50).then(() => false)]);
    if (finished) break;
    const save = run.children().find((p) => isDocker(p, 'save'));
    const load = run.dockerLoads()[0];
    failedAt = save ? save.goneAt : load?.seenAt;
    if (failedAt !== undefined && Date.now() - failedAt > 10_000) run.expire();
  }
  const r = await run.done;
  await sleep(1000);
  const left = aliveLoads(run);
  for (const p of run.dockerLoads()) killIfAlive(p);
  const loads = run.dockerLoads().length;
  // Not a requirement (a sink may start the engine only once it has bytes), but what the test is about.
  t.diagnostic(
    `docker load processes started by ddiff: ${loads}; running when ddiff exited or was killed: ${r.loadsAliveAtExit.length}; ` +
      `the failure (docker save exiting, else docker load starting) came ${failedAt === undefined ? '-' : failedAt - started} ms after ddiff's start`,
  );
  const loaded = await docker.has(targetId);
  // Every check, so that one failure does not hide the others.
  const problems: string[] = [];
  if (r.timedOut) {
    const alive = r.loadsAliveAtExit.map((p) => p.pid).join(', ') || 'none';
    problems.push(`ddiff did not exit within 10 s of the failure (killed); docker load still running then: ${alive}`);
  }
  if (!r.timedOut && r.code === 0) problems.push('exit 0, though the load failed');
  if (!message.test(r.stderr)) problems.push(`stderr does not match ${message}`);
  if (left.length > 0) problems.push(`docker load still running 1 s after ddiff exited: ${left.join(', ')}`);
  if (loaded) problems.push(`Docker holds the target image ${targetId}`);
  assert.deepEqual(problems, [], `${problems.join('\n')}\n${show(r)}`);
}

for (const variant of CLI_VARIANTS) {
  test(`1a failed full rebuild into Docker (the base's docker save fails during the rebuild): exit ≠ 0 within 10 s, no docker load left [${variant.label}]`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    const s = await failingSaveSetup();
    if (s.cannot !== undefined) {
      if (enginesRequired) throw new Error(`cannot make the base's docker save fail: ${s.cannot}`);
      t.skip(`cannot make the base's docker save fail: ${s.cannot}`);
      return;
    }
    await assertFailsPromptly(
      t,
      ['load', s.bundle, '--no-fast-path', '-q'],
      dockerEnv(cli),
      /docker save|no such file or directory/,
      s.target.id,
    );
  });
}

for (const variant of CLI_VARIANTS) {
  test(`1b failed full rebuild into Docker (a --base archive layer corrupt, found mid-stream): exit ≠ 0 within 10 s, no docker load left [${variant.label}]`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    const s = await corruptArchiveSetup();
    await assertFailsPromptly(t, ['load', s.bundle, '--base', s.corrupt, '--no-fast-path', '-q'], dockerEnv(cli), /corrupt/, s.target.id);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM to ddiff alone in the middle of a load into Docker
// ---------------------------------------------------------------------------------------------

const BIG = 200 * 1000 * 1000;

/**
 * A small base (crafted, loaded into Docker) and a target adding a 200 MB layer of random bytes,
 * bundled from archives with --compress none (the bundle carries the layer as it is).
 */
const bigSetup = once(async () => {
  const dir = await freshDir('sigterm');
  const baseLayer = smallLayer('base');
  const big = join(dir, 'big-layer.tar');
  const bigLayer = await writeBigLayer(big, BIG);
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  const [base] = await writeDockerArchive(baseTar, [{ tag: uniqueName('lp-big-base'), layers: [{ data: baseLayer }] }]);
  const [target] = await writeDockerArchive(targetTar, [
    { tag: uniqueName('lp-big-target'), layers: [{ data: baseLayer }, { file: big, diffId: bigLayer.diffId, size: bigLayer.size }] },
  ]);
  await rm(big);
  docker.track(target!.id);
  docker.track(target!.tag);
  await loadCrafted(docker, baseTar, [base!]);
  const bundle = join(dir, 'big.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle, '--compress', 'none'], NO_ENGINE);
  assert.equal(d.included, 1);
  await rm(targetTar);
  return { bundle, target: target!, layerSize: bigLayer.size };
});

/**
 * Loads the big bundle into Docker and sends SIGTERM to the ddiff process alone once the
 * `docker load` child has read `fraction` of the layer (1: all of it, and then 200 ms more, so
 * the whole archive has been handed over while the daemon is still loading it).
 */
async function sigtermMidLoad(t: TestContext, cli: DockerCli, fraction: number): Promise<void> {
  const s = await bigSetup();
  await removeIfPresent(docker, s.target.id);
  const run = startDdiff(['load', s.bundle, '-q'], { env: dockerEnv(cli), limitMs: 90_000 });
  const exited = () => run.child.exitCode !== null || run.child.signalCode !== null;
  try {
    const deadline = Date.now() + 60_000;
    let load: TrackedProc | undefined;
    let read = 0;
    const threshold = fraction >= 1 ? s.layerSize : Math.floor(s.layerSize * fraction);
    while (Date.now() < deadline && !exited()) {
      load ??= run.dockerLoads().find(isAlive);
      if (load) {
        read = bytesRead(load.pid);
        if (read >= threshold) break;
      }
      await sleep(10);
    }
    if (fraction >= 1) await sleep(200);
    const loadRunning = load !== undefined && isAlive(load);
    const exitedEarly = exited();
    if (!exitedEarly) process.kill(run.pid, 'SIGTERM');
    const signalledAt = Date.now();
    const r = await run.done;
    await sleep(1000);
    const leftAfter1s = aliveLoads(run);
    t.diagnostic(
      `docker load had read ${read} bytes (layer ${s.layerSize}) when ddiff got SIGTERM; ddiff exited ${r.elapsedMs} ms after it started`,
    );
    assert.ok(!exitedEarly, `ddiff was still running when the test meant to signal it: ${show(r)}`);
    assert.ok(loadRunning, `docker load was running when ddiff got SIGTERM (it had read ${read} of ${threshold} bytes): ${show(r)}`);
    await sleep(Math.max(0, 8000 - (Date.now() - signalledAt)));
    const leftAfter8s = aliveLoads(run);
    // A docker load still running is still loading: let it finish (as it would), then look.
    while (aliveLoads(run).length > 0 && Date.now() - signalledAt < 40_000) await sleep(100);
    const loaded = await docker.has(s.target.id);
    // Every check, so that one failure does not hide the others.
    const problems: string[] = [];
    if (r.timedOut) problems.push('ddiff did not exit after SIGTERM');
    else if (r.code !== 143) problems.push(`exit ${r.code ?? r.signal}, expected 143`);
    if (leftAfter1s.length > 0) problems.push(`docker load still running 1 s after ddiff exited: ${leftAfter1s.join(', ')}`);
    if (leftAfter8s.length > 0) problems.push(`docker load still running 8 s after the SIGTERM: ${leftAfter8s.join(', ')}`);
    if (loaded) {
      const after = Math.round((Date.now() - signalledAt) / 1000);
      problems.push(`Docker holds the target image ${s.target.id} ${after} s after the SIGTERM (ddiff exited ${r.code ?? r.signal})`);
    }
    assert.deepEqual(problems, [], `${problems.join('\n')}\n${show(r)}`);
  } finally {
    if (!exited()) run.child.kill('SIGKILL');
    await run.done.catch(() => undefined);
    for (const p of run.dockerLoads()) killIfAlive(p);
    await removeIfPresent(docker, s.target.id).catch(() => undefined);
  }
}

for (const variant of CLI_VARIANTS) {
  test(`2a SIGTERM to ddiff alone while the archive is being sent (25 % read by docker load): 143, no docker load left, no image [${variant.label}]`, {
    timeout: 180_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    await sigtermMidLoad(t, cli, 0.25);
  });
  test(`2b SIGTERM to ddiff alone after docker load has read the whole archive, while the daemon loads it: 143, no docker load left, no image [${variant.label}]`, {
    timeout: 180_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    await sigtermMidLoad(t, cli, 1);
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Base layers that start with `{`, and 0-byte base layers, in full rebuilds
// ---------------------------------------------------------------------------------------------

interface OddBase {
  kind: string;
  bundle: string;
  base: string;
  baseInfo: ImageInfo;
  target: string;
  targetInfo: ImageInfo;
  /** docker save of base and target, for Podman. */
  both: string;
}

/** A base imported from a tar the test writes, a target FROM it adding a file, the bundle. */
async function oddBase(kind: 'brace' | 'empty'): Promise<OddBase> {
  const dir = await freshDir(`odd-${kind}`);
  const rootfs = join(dir, 'rootfs.tar');
  if (kind === 'brace') {
    // The layer's first bytes are its first entry's name: `{{cookiecutter.slug}}/`.
    await writeFile(rootfs, tarOf([['{{cookiecutter.slug}}/'], ['{{cookiecutter.slug}}/README.md', randomContent('readme')]]));
  } else {
    await writeFile(rootfs, Buffer.alloc(0));
  }
  const base = uniqueName(`lp-${kind}-base`);
  const baseInfo = await dockerImport(rootfs, base);
  assert.equal(baseInfo.diffIds.length, 1);
  if (kind === 'empty') assert.equal(baseInfo.diffIds[0], EMPTY_DIFF_ID, 'docker import of a 0-byte file gives the empty layer');
  const saved = join(dir, 'base-check.tar');
  await docker.save([base], saved);
  const layer = (await readFile(saved)).toString('latin1');
  if (kind === 'brace')
    assert.ok(
      layer.includes('\0{{cookiecutter.slug}}/') || layer.includes('{{cookiecutter.slug}}/\0'),
      'the saved layer holds the brace directory',
    );
  await rm(saved);
  const target = uniqueName(`lp-${kind}-target`);
  const targetInfo = await docker.build(target, `FROM ${base}\nCOPY c.txt /c.txt\n`, files('c.txt'));
  assert.equal(targetInfo.diffIds.length, 2);
  assert.equal(targetInfo.diffIds[0], baseInfo.diffIds[0]);
  const bundle = join(dir, `${kind}.ddiff`);
  const d = await diffJson([base, target, '-o', bundle], dockerEnv());
  assert.equal(d.included, 1);
  const both = join(dir, 'both.tar');
  await docker.save([base, target], both);
  return { kind, bundle, base, baseInfo, target, targetInfo, both };
}

const oddBases = { brace: once(() => oddBase('brace')), empty: once(() => oddBase('empty')) };
const oddLabels = { brace: 'base layer starting with `{` ({{cookiecutter.slug}}/)', empty: '0-byte base layer (e3b0c4…)' };

for (const kind of ['brace', 'empty'] as const) {
  for (const variant of CLI_VARIANTS) {
    test(`3 ${oddLabels[kind]}: load --no-fast-path into Docker gives the target's image ID [${variant.label}]`, {
      timeout: 120_000,
    }, async (t) => {
      if (!(await ready(t, [docker]))) return;
      const cli = cliOrSkip(t, variant);
      if (!cli) return;
      const s = await oddBases[kind]();
      await removeIfPresent(docker, s.targetInfo.id);
      await ok(['load', s.bundle, '--no-fast-path', '-q'], { env: dockerEnv(cli), limitMs: 15_000 });
      await assertSameImage(docker, s.targetInfo);
    });
  }

  test(`3 ${oddLabels[kind]}: load into Podman (always a full rebuild) gives the target's image ID`, { timeout: 120_000 }, async (t) => {
    if (!(await ready(t, [docker, podman]))) return;
    const s = await oddBases[kind]();
    for (const info of [s.baseInfo, s.targetInfo]) podman.track(info.id);
    podman.track(s.base);
    podman.track(s.target);
    await podman.load(s.both);
    assert.ok(await podman.has(s.baseInfo.id));
    await removeIfPresent(podman, s.targetInfo.id);
    await ok(['load', s.bundle, '--engine', 'podman', '-q'], { env: PODMAN_ENV, limitMs: 30_000 });
    await assertSameImage(podman, s.targetInfo);
  });

  test(`3 ${oddLabels[kind]}: load -o out.tar from the Docker base, then docker load gives the target's image ID`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const s = await oddBases[kind]();
    const out = join(await freshDir(`odd-${kind}-out`), 'out.tar');
    await ok(['load', s.bundle, '-o', out, '-q'], { env: dockerEnv(), limitMs: 20_000 });
    await removeIfPresent(docker, s.targetInfo.id);
    await docker.load(out);
    await assertSameImage(docker, s.targetInfo);
  });
}

// ---------------------------------------------------------------------------------------------
// 4. A have-list base split over several local images
// ---------------------------------------------------------------------------------------------

interface Split {
  dir: string;
  /** The base archives and the images each holds. */
  bases: { archive: string; images: Crafted[] }[];
  targetTar: string;
  target: Crafted;
  /** diffIDs of L1, L2, L3, L4. */
  l: string[];
}

/** b1 = [L1], b2 = [L4, L2], target = [L1, L2, L3]: crafted archives, same tar bytes per layer. */
const splitSetup = once(async (): Promise<Split> => {
  const dir = await freshDir('split');
  const [l1, l2, l3, l4] = ['l1', 'l2', 'l3', 'l4'].map(smallLayer) as [Buffer, Buffer, Buffer, Buffer];
  const b1 = join(dir, 'b1.tar');
  const b2 = join(dir, 'b2.tar');
  const targetTar = join(dir, 'target.tar');
  const b1Images = await writeDockerArchive(b1, [{ tag: uniqueName('lp-split-b1'), layers: [{ data: l1 }] }]);
  const b2Images = await writeDockerArchive(b2, [{ tag: uniqueName('lp-split-b2'), layers: [{ data: l4 }, { data: l2 }] }]);
  const [target] = await writeDockerArchive(targetTar, [
    { tag: uniqueName('lp-split-target'), layers: [{ data: l1 }, { data: l2 }, { data: l3 }] },
  ]);
  return {
    dir,
    bases: [
      { archive: b1, images: b1Images },
      { archive: b2, images: b2Images },
    ],
    targetTar,
    target: target!,
    l: [l1, l2, l3, l4].map((l) => `sha256:${sha256Hex(l)}`),
  };
});

/** Loads b1 and b2 into the engine, writes its have-list, and the bundle of the target against it. */
async function splitBundle(engine: TestEngine, s: Split, env: NodeJS.ProcessEnv): Promise<string> {
  for (const { archive, images } of s.bases) await loadCrafted(engine, archive, images);
  engine.track(s.target.id);
  engine.track(s.target.tag);
  await removeIfPresent(engine, s.target.id);
  const have = join(s.dir, `have-${engine.name}.json`);
  await writeFile(have, await ok(['have', '--json', '--engine', engine.name], { env }));
  const list = JSON.parse(await readFile(have, 'utf8')) as { images: { diffIds: string[] }[] };
  const held = new Set(list.images.flatMap((i) => i.diffIds));
  assert.ok(held.has(s.l[0]!) && held.has(s.l[1]!) && !held.has(s.l[2]!), `the have-list holds L1 and L2, not L3`);
  assert.ok(!list.images.some((i) => i.diffIds.includes(s.l[0]!) && i.diffIds.includes(s.l[1]!)), 'no single image holds both L1 and L2');
  const bundle = join(s.dir, `split-${engine.name}.ddiff`);
  const d = await diffJson(['--have', have, s.targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1, 'only L3 is bundled');
  const layers = d.metadata.images[0]!.layers;
  assert.deepEqual(
    layers.map((l) => [l.diffId, l.blob !== undefined]),
    [
      [s.l[0], false],
      [s.l[1], false],
      [s.l[2], true],
    ],
  );
  return bundle;
}

const splitDockerBundle = once(async () => splitBundle(docker, await splitSetup(), dockerEnv()));

for (const variant of CLI_VARIANTS) {
  test(`4 diff --have with the base split over two Docker images (b1=[L1], b2=[L4,L2]): load gives the target's image ID [${variant.label}]`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    const s = await splitSetup();
    const bundle = await splitDockerBundle();
    await removeIfPresent(docker, s.target.id);
    await ok(['load', bundle, '-q'], { env: dockerEnv(cli), limitMs: 30_000 });
    await assertSameImage(docker, { id: s.target.id, diffIds: s.target.diffIds, tags: [s.target.tag] });
  });
}

test("4 diff --have with the base split over two Podman images: load --engine podman gives the target's image ID", {
  timeout: 120_000,
}, async (t) => {
  if (!(await ready(t, [podman]))) return;
  const s = await splitSetup();
  const bundle = await splitBundle(podman, s, PODMAN_ENV);
  await ok(['load', bundle, '--engine', 'podman', '-q'], { env: PODMAN_ENV, limitMs: 30_000 });
  await assertSameImage(podman, { id: s.target.id, diffIds: s.target.diffIds, tags: [s.target.tag] });
});

// ---------------------------------------------------------------------------------------------
// 5. A gzip- or zstd-compressed bundle
// ---------------------------------------------------------------------------------------------

const compressedSetup = once(async () => {
  const dir = await freshDir('compressed');
  const images = await dockerBasePlusOne();
  const bundle = join(dir, 'app.ddiff');
  await diffJson([images.base, images.target, '-o', bundle], dockerEnv());
  const baseTar = join(dir, 'base.tar');
  await docker.save([images.base], baseTar);
  const raw = await readFile(bundle);
  const gz = `${bundle}.gz`;
  const zst = `${bundle}.zst`;
  await writeFile(gz, gzipSync(raw));
  await writeFile(zst, zstdCompressSync(raw));
  return { dir, ...images, baseTar, files: { gzip: gz, zstd: zst } };
});

for (const method of ['gzip', 'zstd'] as const) {
  for (const variant of CLI_VARIANTS) {
    test(`5 a ${method}-compressed bundle (${method} -c app.ddiff) loads into Docker with the target's image ID [${variant.label}]`, {
      timeout: 120_000,
    }, async (t) => {
      if (!(await ready(t, [docker]))) return;
      const cli = cliOrSkip(t, variant);
      if (!cli) return;
      const s = await compressedSetup();
      await removeIfPresent(docker, s.targetInfo.id);
      await ok(['load', s.files[method], '-q'], { env: dockerEnv(cli), limitMs: 30_000 });
      await assertSameImage(docker, s.targetInfo);
    });
  }

  test(`5 a ${method}-compressed bundle: load -o out.tar (--base ARCHIVE) writes the target, as ddiff list and docker load read it`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const s = await compressedSetup();
    const out = join(await freshDir(`compressed-${method}-out`), 'out.tar');
    await ok(['load', s.files[method], '--base', s.baseTar, '-o', out, '-q'], { env: NO_ENGINE });
    const listed = (JSON.parse(await ok(['list', '--json', out], { env: NO_ENGINE })) as { images: { id: string }[] }).images;
    assert.deepEqual(
      listed.map((i) => i.id),
      [s.targetInfo.id],
    );
    await removeIfPresent(docker, s.targetInfo.id);
    await docker.load(out);
    await assertSameImage(docker, s.targetInfo);
  });
}

// ---------------------------------------------------------------------------------------------
// 6. load -o: every archive ddiff writes is read by ddiff list, skopeo and docker load
// ---------------------------------------------------------------------------------------------

/** Base and target built in Docker, saved, bundled from the archives; the base archive then moved away. */
const outputSetup = once(async () => {
  const dir = await freshDir('output');
  const images = await dockerBasePlusOne();
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  await docker.save([images.base], baseTar);
  await docker.save([images.target], targetTar);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1);
  // The recorded base archive is gone: a load without --base must take the base from an engine.
  const baseCopy = join(dir, 'base-elsewhere.tar');
  await copyFile(baseTar, baseCopy);
  await rm(baseTar);
  await rm(targetTar);
  return { dir, ...images, bundle, baseCopy };
});

/**
 * Reads `out` with ddiff list, skopeo inspect and skopeo copy (docker-archive: and
 * oci-archive:…:TAG) and docker load; returns what is wrong.
 */
async function archiveProblems(out: string, expected: ImageInfo, tag: string): Promise<string[]> {
  const problems: string[] = [];
  const n = expected.diffIds.length;
  const list = await runDdiff(['list', '--json', out], { env: NO_ENGINE, limitMs: 30_000 });
  if (list.code !== 0) problems.push(`ddiff list: ${show(list)}`);
  else {
    const images = (JSON.parse(list.stdout) as { images: { id: string; layers: { diffId: string }[] }[] }).images;
    if (images.length !== 1 || images[0]!.id !== expected.id)
      problems.push(`ddiff list: images ${images.map((i) => i.id).join(', ')}, expected ${expected.id}`);
    else if (JSON.stringify(images[0]!.layers.map((l) => l.diffId)) !== JSON.stringify(expected.diffIds))
      problems.push('ddiff list: diffIDs differ');
  }
  const bareTag = tag.slice(tag.lastIndexOf(':') + 1);
  for (const ref of [`docker-archive:${out}`, `oci-archive:${out}:${bareTag}`]) {
    const manifest = spawnSync('skopeo', ['inspect', '--raw', ref], { encoding: 'utf8' });
    const config = spawnSync('skopeo', ['inspect', '--raw', '--config', ref], { encoding: 'buffer' });
    const inspect = spawnSync('skopeo', ['inspect', ref], { encoding: 'utf8' });
    if (manifest.status !== 0 || config.status !== 0 || inspect.status !== 0) {
      const stderr = [manifest.stderr, config.stderr.toString(), inspect.stderr].find((e) => e.trim()) ?? '';
      problems.push(`skopeo inspect ${ref}: ${stderr.trim().split('\n').pop()}`);
      continue;
    }
    const m = JSON.parse(manifest.stdout) as { config?: { digest?: string }; layers?: unknown[] };
    const configId = `sha256:${sha256Hex(config.stdout)}`;
    const layers = (JSON.parse(inspect.stdout) as { Layers?: unknown[] }).Layers ?? [];
    if (m.config?.digest !== expected.id) problems.push(`skopeo inspect --raw ${ref}: config ${m.config?.digest}, expected ${expected.id}`);
    if (configId !== expected.id)
      problems.push(`skopeo inspect --raw --config ${ref}: the config hashes to ${configId}, expected ${expected.id}`);
    if ((m.layers ?? []).length !== n || layers.length !== n)
      problems.push(`skopeo inspect ${ref}: ${layers.length} layers, expected ${n}`);
  }
  // inspect reads only the index, manifest and config; copy reads (and checks) every blob.
  for (const [i, ref] of [`docker-archive:${out}`, `oci-archive:${out}:${bareTag}`].entries()) {
    const copyDir = `${out}.copy-${i}`;
    const copy = spawnSync('skopeo', ['copy', '--quiet', ref, `dir:${copyDir}`], { encoding: 'utf8' });
    if (copy.status !== 0) problems.push(`skopeo copy ${ref} dir:…: ${copy.stderr.trim().split('\n').pop()}`);
    await rm(copyDir, { recursive: true, force: true });
  }
  await removeIfPresent(docker, expected.id);
  const loaded = await docker.run(['load', '-i', out]);
  if (loaded.code !== 0) problems.push(`docker load -i: ${loaded.stderr.trim()}`);
  else {
    const got = await docker.inspect(expected.id);
    if (!got) problems.push(`docker load -i: no image ${expected.id} afterwards (${loaded.stdout.trim()})`);
    else if (JSON.stringify(got.diffIds) !== JSON.stringify(expected.diffIds)) problems.push('docker load -i: diffIDs differ');
  }
  return problems;
}

async function checkOutput(
  t: TestContext,
  engines: TestEngine[],
  name: string,
  produce: (s: Awaited<ReturnType<typeof outputSetup>>, out: string) => Promise<void>,
): Promise<void> {
  if (!(await ready(t, engines, { skopeo: true }))) return;
  const s = await outputSetup();
  const out = join(await freshDir(`out-${name}`), 'out.tar');
  await produce(s, out);
  const problems = await archiveProblems(out, s.targetInfo, s.target);
  assert.deepEqual(problems, [], `${out} is not read back as the target:\n${problems.join('\n')}`);
}

for (const variant of CLI_VARIANTS) {
  test(`6 load -o with the base only in Docker (recorded base archive gone): ddiff list, skopeo inspect/copy (docker-archive:, oci-archive:) and docker load read it [${variant.label}]`, {
    timeout: 120_000,
  }, async (t) => {
    if (!(await ready(t, [docker]))) return;
    const cli = cliOrSkip(t, variant);
    if (!cli) return;
    await checkOutput(t, [docker], `docker-${variant.cli?.version}`, async (s, out) => {
      await ok(['load', s.bundle, '-o', out, '-q'], { env: dockerEnv(cli) });
    });
  });
}

test('6 load -o with the base only in Podman (--engine podman): ddiff list, skopeo inspect/copy (docker-archive:, oci-archive:) and docker load read it', {
  timeout: 120_000,
}, async (t) => {
  await checkOutput(t, [docker, podman], 'podman', async (s, out) => {
    podman.track(s.baseInfo.id);
    podman.track(s.base);
    await podman.load(s.baseCopy);
    await ok(['load', s.bundle, '--engine', 'podman', '-o', out, '-q'], { env: PODMAN_ENV });
  });
});

test('6 load -o with --base ARCHIVE (no engine): ddiff list, skopeo inspect/copy (docker-archive:, oci-archive:) and docker load read it', {
  timeout: 120_000,
}, async (t) => {
  await checkOutput(t, [docker], 'archive', async (s, out) => {
    await ok(['load', s.bundle, '--base', s.baseCopy, '-o', out, '-q'], { env: NO_ENGINE });
  });
});

test('6 load - -o (bundle on stdin, base in Docker): ddiff list, skopeo inspect/copy (docker-archive:, oci-archive:) and docker load read it', {
  timeout: 120_000,
}, async (t) => {
  await checkOutput(t, [docker], 'stdin', async (s, out) => {
    await ok(['load', '-', '-o', out, '-q'], { env: dockerEnv(), stdinFile: s.bundle });
  });
});

test('6 load --no-fast-path -o (base in Docker): ddiff list, skopeo inspect/copy (docker-archive:, oci-archive:) and docker load read it', {
  timeout: 120_000,
}, async (t) => {
  await checkOutput(t, [docker], 'no-fast-path', async (s, out) => {
    await ok(['load', s.bundle, '--no-fast-path', '-o', out, '-q'], { env: dockerEnv() });
  });
});
