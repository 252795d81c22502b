/**
 * Helpers the end-to-end test files share: one-time setup, engine and skopeo checks that skip
 * (or fail) a test, environments for ddiff, how a ddiff run is shown, hand-written ustar tars and
 * crafted docker-save archives, and loading and checking crafted images in an engine.
 *
 * This module is compiled into dist/test/, where `node --test` may also run it as a file:
 * importing it must have no side effects.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../helpers/tar.js';
import { enginesRequired, normalizeTag, type TestEngine } from './engines.js';

/** Runs `fn` once; later calls get the same promise (shared setup of a group of tests). */
export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= fn());
}

/** A maker of fresh directories under `work`: `<work>/<label>-<n>`, n counting up. */
export function freshDirs(work: string): (label: string) => Promise<string> {
  let dirCount = 0;
  return async (label) => {
    dirCount += 1;
    const dir = join(work, `${label}-${dirCount}`);
    await mkdir(dir, { recursive: true });
    return dir;
  };
}

// ---------------------------------------------------------------------------------------------
// Engines, skopeo, environments for ddiff
// ---------------------------------------------------------------------------------------------

function skopeoReason(): string | undefined {
  const r = spawnSync('skopeo', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `skopeo --version failed: ${r.error?.message ?? r.stderr.trim()}`;
}

/** Skips (or, when engines are required, fails) unless every engine answers; true to go on. */
export async function ready(t: TestContext, engines: TestEngine[], options: { skopeo?: boolean } = {}): Promise<boolean> {
  const reasons: string[] = [];
  for (const engine of engines) {
    const reason = await engine.unavailableReason();
    if (reason !== undefined) reasons.push(`${engine.name} not available: ${reason}`);
  }
  if (options.skopeo) {
    const reason = skopeoReason();
    if (reason !== undefined) reasons.push(reason);
  }
  if (reasons.length === 0) return true;
  if (enginesRequired) throw new Error(`required here but missing: ${reasons.join('; ')}`);
  t.skip(reasons.join('; '));
  return false;
}

/** Environment for ddiff: Docker as the engine. */
export const DOCKER_ENV: NodeJS.ProcessEnv = { DDIFF_ENGINE: 'docker', DDIFF_FORCE_PODMAN: '' };
/** Environment for ddiff: Podman as the engine. */
export const PODMAN_ENV: NodeJS.ProcessEnv = { DDIFF_ENGINE: 'podman', DDIFF_FORCE_PODMAN: '' };

/** An environment in which ddiff cannot reach any engine. */
export const NO_ENGINE: NodeJS.ProcessEnv = {
  PATH: '/nonexistent-ddiff-e2e',
  DOCKER_HOST: 'unix:///nonexistent-ddiff-e2e/docker.sock',
  DDIFF_ENGINE: '',
  DDIFF_FORCE_PODMAN: '',
};

/** What every test's ddiff run reports (the test files add what they watch besides). */
export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  /** ddiff had not exited by the limit and was killed (SIGKILL) by the test. */
  timedOut: boolean;
}

/** How a run ended, with the start of its stdout and stderr: for assertion messages. */
export function show(r: RunOutcome): string {
  const how = r.timedOut
    ? `did not exit within the limit (killed after ${r.elapsedMs} ms)`
    : `exit ${r.code ?? r.signal} after ${r.elapsedMs} ms`;
  return `${how}\nstdout: ${r.stdout.trim().slice(0, 2000)}\nstderr: ${r.stderr.trim().slice(0, 2000)}`;
}

// ---------------------------------------------------------------------------------------------
// Layer tars and docker-archives
// ---------------------------------------------------------------------------------------------

export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  mode: number;
  mtime: number;
  content?: Buffer;
  linkname?: string;
}

export function octal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

/** Sets a ustar header's checksum field for its current bytes. */
export function fixChecksum(header: Buffer): void {
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
}

const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', dir: '5' } as const;

/**
 * A ustar header (names up to 100 bytes), uid and gid 0; `owner` is written as user and group
 * name ('' leaves both fields empty).
 */
export function tarHeader(e: Omit<TarEntry, 'content'>, size: number, owner = ''): Buffer {
  const header = Buffer.alloc(512);
  if (Buffer.byteLength(e.name) > 100) throw new Error(`tar name too long: ${e.name}`);
  header.write(e.name, 0, 100, 'utf8');
  octal(header, 100, 8, e.mode);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, e.mtime);
  header.write(TYPEFLAG[e.type], 156, 1, 'ascii');
  if (e.linkname) header.write(e.linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  if (owner) {
    header.write(owner, 265, 32, 'ascii');
    header.write(owner, 297, 32, 'ascii');
  }
  fixChecksum(header);
  return header;
}

export const padding = (size: number) => Buffer.alloc((512 - (size % 512)) % 512);

/** An uncompressed tar of the entries, in this order (`owner` as in tarHeader). */
export function tarOf(entries: TarEntry[], owner = ''): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(tarHeader(e, data.length, owner), data, padding(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A layer of a crafted image: its tar in memory or in a file, and its diffID. */
type CraftedLayer = { data: Buffer } | { file: string; diffId: string; size: number };

function layerDiffId(layer: CraftedLayer): string {
  return 'data' in layer ? `sha256:${sha256Hex(layer.data)}` : layer.diffId;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/** The config of a crafted image; its sha256 is the image ID. */
function craftedConfig(diffIds: string[], label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: ARCH[process.arch] ?? process.arch,
      os: 'linux',
      created: '2020-09-13T12:26:40Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'ddiff.e2e': label } },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created: '2020-09-13T12:26:40Z', created_by: `${label} layer ${i + 1}` })),
    }),
  );
}

/** An image of a crafted archive: its one tag (also as `tags`), ID and diffIDs. */
export interface Crafted {
  tag: string;
  id: string;
  diffIds: string[];
  tags: string[];
}

/**
 * Writes a docker-save archive (manifest.json, `<config>.json`, `<diffID>.tar` layers) of the
 * given images; layers in files are copied in chunks, never read whole. The archive's own
 * entries are files of mode 0644 and mtime 0 (`owner` as in tarHeader).
 */
export async function writeDockerArchive(path: string, images: { tag: string; layers: CraftedLayer[] }[], owner = ''): Promise<Crafted[]> {
  const handle = await open(path, 'w');
  const crafted: Crafted[] = [];
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const written = new Set<string>();
  const header = (name: string, size: number) => tarHeader({ name, type: 'file', mode: 0o644, mtime: 0 }, size, owner);
  const putEntry = async (name: string, data: Buffer) => {
    await handle.write(Buffer.concat([header(name, data.length), data, padding(data.length)]));
  };
  try {
    for (const image of images) {
      const diffIds = image.layers.map(layerDiffId);
      const layerNames: string[] = [];
      for (const [i, layer] of image.layers.entries()) {
        const name = `${diffIds[i]!.slice(7)}.tar`;
        layerNames.push(name);
        if (written.has(name)) continue;
        written.add(name);
        if ('data' in layer) {
          await putEntry(name, layer.data);
          continue;
        }
        await handle.write(header(name, layer.size));
        const source = await open(layer.file, 'r');
        try {
          const buffer = Buffer.allocUnsafe(8 << 20);
          for (let done = 0; done < layer.size; ) {
            const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, layer.size - done), done);
            if (bytesRead === 0) throw new Error(`${layer.file} ends early`);
            await handle.write(buffer.subarray(0, bytesRead));
            done += bytesRead;
          }
        } finally {
          await source.close();
        }
        await handle.write(padding(layer.size));
      }
      const config = craftedConfig(diffIds, image.tag);
      const id = sha256Hex(config);
      if (!written.has(`${id}.json`)) {
        written.add(`${id}.json`);
        await putEntry(`${id}.json`, config);
      }
      manifest.push({ Config: `${id}.json`, RepoTags: [image.tag], Layers: layerNames });
      crafted.push({ tag: image.tag, id: `sha256:${id}`, diffIds, tags: [image.tag] });
    }
    await putEntry('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await handle.write(Buffer.alloc(1024));
  } finally {
    await handle.close();
  }
  return crafted;
}

// ---------------------------------------------------------------------------------------------
// Crafted images in engines
// ---------------------------------------------------------------------------------------------

/** `load -i` of a crafted archive into an engine; every image is tracked for cleanup. */
export async function loadCrafted(engine: TestEngine, archive: string, images: Crafted[]): Promise<void> {
  for (const image of images) {
    engine.track(image.tag);
    engine.track(image.id);
  }
  await engine.load(archive);
  for (const image of images) {
    const got = await engine.inspect(image.id);
    assert.ok(got, `${engine.name} has ${image.tag} after load`);
    assert.deepEqual(got.diffIds, image.diffIds, `${engine.name}: diffIDs of ${image.tag}`);
  }
}

/** The engine holds the expected image: same ID, diffIDs and (normalized) tags. */
export async function assertSameImage(engine: TestEngine, expected: { id: string; diffIds: string[]; tags: string[] }): Promise<void> {
  const got = await engine.inspect(expected.id);
  assert.ok(got, `${engine.name} has no image ${expected.id} after load`);
  assert.equal(got.id, expected.id);
  assert.deepEqual(got.diffIds, expected.diffIds, `${engine.name}: diffIDs of ${expected.id}`);
  for (const tag of expected.tags) {
    assert.ok(
      got.tags.map(normalizeTag).includes(normalizeTag(tag)),
      `${engine.name}: ${expected.id} is tagged ${tag} (has ${got.tags.join(', ')})`,
    );
  }
}

/** Removes an image (by ID, with its tags) when present. */
export async function removeIfPresent(engine: TestEngine, id: string): Promise<void> {
  if (await engine.has(id)) await engine.must(['rmi', '-f', id]);
  assert.equal(await engine.has(id), false, `${engine.name} still has ${id}`);
}
