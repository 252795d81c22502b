/**
 * Real container engines for the end-to-end tests: availability, building small FROM-scratch
 * images from a Dockerfile string, inspecting, saving, loading and removing them, and cleaning
 * up every image a test created.
 *
 * Docker is the private daemon of scripts/engines.sh (DOCKER_HOST); Podman uses the machine's
 * storage, which other users share: every image gets a unique name (`ddiff-e2e-<random>/…`) and
 * is removed in `cleanup()`.
 *
 * This module is compiled into dist/test/, where `node --test` also runs it as a file: importing
 * it must have no side effects.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type EngineName = 'docker' | 'podman';

export interface ImageInfo {
  id: string;
  tags: string[];
  diffIds: string[];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Fixed mtime for every file a test builds into an image: same bytes + same mtime = same diffID. */
export const MTIME = new Date('2020-09-13T12:26:40Z');

/** When set (or in CI), a missing engine fails the tests instead of skipping them. */
export const enginesRequired = process.env.DDIFF_E2E_REQUIRE_ENGINES === '1' || process.env.CI === 'true';

/** A random prefix, unique to this test run: `ddiff-e2e-<hex>`. */
export const runPrefix = `ddiff-e2e-${randomBytes(4).toString('hex')}`;

let counter = 0;
/** A unique image name for this run, e.g. `ddiff-e2e-1a2b3c4d/base-3:1`. */
export function uniqueName(role: string): string {
  counter += 1;
  return `${runPrefix}/${role}-${counter}:1`;
}

/** Random file contents, so images of different tests (and runs) never share layers. */
export function randomContent(label: string): string {
  return `${label} ${randomBytes(12).toString('hex')}\n`;
}

/** Drops the registry part engines add to short names (`localhost/` for Podman, `docker.io/`). */
export function normalizeTag(tag: string): string {
  return tag.replace(/^(localhost|docker\.io)\//, '');
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Writes `files` (and the Dockerfile) into a fresh build context, every file with mtime MTIME. */
export async function makeContext(dockerfile: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-e2e-ctx-'));
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    await utimes(path, MTIME, MTIME);
  }
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

export class TestEngine {
  readonly name: EngineName;
  private availability: Promise<string | undefined> | undefined;
  /** Every reference and ID this engine got from a test, removed by cleanup(). */
  private readonly created: string[] = [];

  constructor(name: EngineName) {
    this.name = name;
  }

  /** Resolves with undefined when the engine answers, else with why it does not. */
  unavailableReason(): Promise<string | undefined> {
    this.availability ??= (async () => {
      const args = this.name === 'docker' ? ['version', '--format', '{{.Server.Version}}'] : ['version'];
      const hint =
        this.name === 'docker'
          ? `docker version did not answer on DOCKER_HOST=${process.env.DOCKER_HOST ?? '(unset)'}; start the private daemon with: eval "$(scripts/engines.sh start)"`
          : 'podman version failed (podman 4.x as root is needed)';
      try {
        const r = await run(this.name, args, {}, 20_000);
        if (r.code === 0) return undefined;
        return `${hint}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 300) || `exit ${r.code}`}`;
      } catch (error) {
        return `${hint}: ${(error as Error).message}`;
      }
    })();
    return this.availability;
  }

  /** Runs the engine CLI; never throws on a non-zero exit. */
  run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    return run(this.name, args, env);
  }

  /** Runs the engine CLI and throws (with its stderr) on a non-zero exit; resolves with stdout. */
  async must(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const r = await this.run(args, env);
    if (r.code !== 0) throw new Error(`${this.name} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Remembers a reference or ID for cleanup() (for images that reach the engine by `load`). */
  track(ref: string): void {
    this.created.push(ref);
  }

  /**
   * Builds `tag` from a Dockerfile string and a build context holding `files` (mtime MTIME);
   * FROM lines name local images only (nothing is ever pulled).
   */
  async build(tag: string, dockerfile: string, files: Record<string, string | Buffer>): Promise<ImageInfo> {
    const context = await makeContext(dockerfile, files);
    this.track(tag);
    try {
      if (this.name === 'docker') {
        await this.must(['build', '-q', '-t', tag, context], { DOCKER_BUILDKIT: '0' });
      } else {
        await this.must(['build', '-q', '--isolation=chroot', '--pull=never', '--layers', '-t', tag, context]);
      }
    } finally {
      await rm(context, { recursive: true, force: true });
    }
    const info = await this.inspect(tag);
    if (!info) throw new Error(`${this.name}: ${tag} not found after build`);
    this.track(info.id);
    return info;
  }

  /** ID, tags and diffIDs of a local image; undefined when the engine has no such image. */
  async inspect(ref: string): Promise<ImageInfo | undefined> {
    const r = await this.run(['image', 'inspect', '--format', '{{json .}}', ref]);
    if (r.code !== 0) {
      if (/no such image|image not known|not found/i.test(r.stderr)) return undefined;
      throw new Error(`${this.name} image inspect ${ref} failed: ${r.stderr.trim()}`);
    }
    // Docker prints a one-line object; Podman 4.3 treats `{{json .}}` as `json` and prints an array.
    const parsed = JSON.parse(r.stdout) as unknown;
    const doc = (Array.isArray(parsed) ? parsed[0] : parsed) as {
      Id: string;
      RepoTags?: string[] | null;
      RootFS?: { Layers?: string[] | null };
    };
    return {
      id: doc.Id.startsWith('sha256:') ? doc.Id : `sha256:${doc.Id}`,
      tags: doc.RepoTags ?? [],
      diffIds: doc.RootFS?.Layers ?? [],
    };
  }

  /** True when an image with this ID (or reference) is present. */
  async has(ref: string): Promise<boolean> {
    return (await this.inspect(ref)) !== undefined;
  }

  /** `save` as a docker-archive (Podman: `--format docker-archive`). */
  async save(refs: string[], file: string): Promise<void> {
    const args = ['save', '-o', file];
    if (this.name === 'podman') {
      args.push('--format', 'docker-archive');
      if (refs.length > 1) args.push('--multi-image-archive');
    }
    await this.must([...args, ...refs]);
  }

  /** `load -i file`; resolves with what the engine printed. */
  async load(file: string): Promise<string> {
    return this.must(['load', '-i', file]);
  }

  /** Removes images (by reference or ID); each must exist. */
  async rmi(...refs: string[]): Promise<void> {
    await this.must(['rmi', ...refs]);
  }

  /** Removes everything track()/build() recorded, newest first; ignores what is already gone. */
  async cleanup(): Promise<void> {
    if ((await this.unavailableReason()) !== undefined) return;
    const refs = [...new Set(this.created.reverse())];
    this.created.length = 0;
    for (let pass = 0; pass < 2; pass++) {
      for (const ref of refs) {
        if (await this.has(ref).catch(() => false)) await this.run(['rmi', '-f', ref]);
      }
    }
  }
}

export const docker = new TestEngine('docker');
export const podman = new TestEngine('podman');

/** Entries of an uncompressed tar (ustar, with its name prefix): name, data offset and size. */
export function tarEntries(tar: Buffer): { name: string; offset: number; size: number }[] {
  const entries: { name: string; offset: number; size: number }[] = [];
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number) => {
      const raw = header.subarray(start, start + length);
      const end = raw.indexOf(0);
      return raw.subarray(0, end === -1 ? length : end).toString('utf8');
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const prefix = field(345, 155);
    const offset = pos + 512;
    const data = tar.subarray(offset, offset + size);
    if (type === 'L') {
      longName = data.toString('utf8').replace(/\0+$/, '');
    } else if (type === 'x') {
      const path = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (path) longName = path[1];
    } else {
      const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
      longName = undefined;
      entries.push({ name, offset, size });
    }
    pos = offset + Math.ceil(size / 512) * 512;
  }
  return entries;
}

/** Digests of the `blobs/sha256/…` entries of a bundle file. */
export async function bundleBlobs(file: string): Promise<string[]> {
  return tarEntries(await readFile(file))
    .filter((e) => e.name.startsWith('blobs/sha256/'))
    .map((e) => `sha256:${e.name.slice('blobs/sha256/'.length)}`);
}
