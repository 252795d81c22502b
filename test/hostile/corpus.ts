/**
 * The hostile-input corpus (issue 6): every bad input ddiff must refuse, how to build it, which
 * commands it goes through and what each must answer — the error class (checked in-process), a
 * message pattern and the exit code (checked through the CLI). `corpus.test.ts` runs the table;
 * README.md beside this file lists it. To add a case, append to `CASES`.
 *
 * Inputs are built in a temporary directory from the repo fixtures (docker-base.tar, the base;
 * docker-app.tar, the target: base + 1 layer) or from scratch.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTar, type TarFile } from '../helpers/tar.js';
import { endOfEntries, entry, entryData, flipInEntry, patchHeader, repack, sha256Hex, tarEntries } from './tar-edit.js';

/** What a command is asked to do with the hostile input X. */
export type Command =
  | 'list' // ddiff list --json X
  | 'list-stdin' // ddiff list --json - < X
  | 'diff-base' // ddiff diff X TARGET -o OUT
  | 'diff-target' // ddiff diff BASE X -o OUT
  | 'load-base' // ddiff load BUNDLE --base X -o OUT
  | 'load' // ddiff load X --base BASE -o OUT
  | 'verify' // ddiff verify X --base BASE
  | 'diff-output'; // ddiff diff BASE TARGET -o X

export const COMMAND_LINES: Record<Command, string> = {
  list: 'list --json X',
  'list-stdin': 'list --json - < X',
  'diff-base': 'diff X TARGET -o OUT',
  'diff-target': 'diff BASE X -o OUT',
  'load-base': 'load BUNDLE --base X -o OUT',
  load: 'load X --base BASE -o OUT',
  verify: 'verify X --base BASE',
  'diff-output': 'diff BASE TARGET -o X',
};

export interface Expectation {
  /** Exit code: 0 (success: the input is harmless to this command) or 1. */
  code: number;
  /** Class of the error thrown in-process (`error.name`), e.g. 'DigestMismatchError'. */
  error?: string;
  /** Pattern the one-line CLI error must match. */
  message?: RegExp;
  /** What the error line must name (default: X, `<stdin>` for list-stdin). */
  names?: 'input' | 'base' | 'other';
  /** Peak RSS limit of the CLI run, in MiB. */
  maxRssMb?: number;
}

export interface Context {
  /** Where inputs are built. */
  dir: string;
  /** fixtures/docker-base.tar and its bytes. */
  base: string;
  baseBytes: Buffer;
  /** fixtures/docker-app.tar (base + 1 layer) and its bytes. */
  target: string;
  targetBytes: Buffer;
  /** A bundle of target against base, and its bytes. */
  bundle: string;
  bundleBytes: Buffer;
  /** An archive sharing no layer with base (fixtures/podman-app.docker-archive.tar). */
  other: string;
}

export interface HostileCase {
  name: string;
  /** What the input is (for README.md). */
  input: string;
  /** Builds the input under ctx.dir; resolves with its path. */
  build: (ctx: Context, path: string) => Promise<string>;
  /** The archive `load`/`verify` take as --base (default: ctx.base). */
  loadBase?: (ctx: Context) => string;
  runs: Partial<Record<Command, Expectation>>;
}

const fails = (error: string, message: RegExp, extra: Partial<Expectation> = {}): Expectation => ({ code: 1, error, message, ...extra });
const ok: Expectation = { code: 0 };

// The target's own layer (not in the base) and a layer the bundle needs from the base.
const TARGET_NEW_LAYER = '1cc60698775d42636e76df90fdb1c718b244341593a2b4ec7c33e8b99df134b5/layer.tar';
const BASE_LAYER_2 = '5cbab87e3bd2367717aab5055f65a1535ef84773d35f024fcf19909cae06cc79/layer.tar';

/** sha256 of 2 GiB of zeros: the diffID of the gzip-bomb layer. */
const ZEROS_2GIB_SHA256 = 'a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51';

async function put(path: string, bytes: Buffer | string): Promise<string> {
  await writeFile(path, bytes);
  return path;
}

function configFor(diffIds: string[]): string {
  return JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created_by: `step ${i + 1}` })),
  });
}

/** A docker-archive whose manifest names `manifestLayers` and whose config lists `diffIds`; `extra` entries added. */
async function dockerArchive(options: {
  diffIds: string[];
  files: TarFile[];
  manifestLayers: string[];
  config?: string;
  manifest?: string;
}): Promise<Buffer> {
  const config = options.config ?? configFor(options.diffIds);
  const configName = `${sha256Hex(config)}.json`;
  return makeTar([
    ...options.files,
    { name: configName, content: config },
    {
      name: 'manifest.json',
      content: options.manifest ?? JSON.stringify([{ Config: configName, RepoTags: ['hostile/x:1'], Layers: options.manifestLayers }]),
    },
  ]);
}

const smallLayer = (text: string) => makeTar([{ name: `${text}.txt`, content: `${text}\n` }]);

interface OciLayer {
  bytes: Buffer;
  /** diffID for the config (default: sha256 of `bytes`, right for uncompressed layers). */
  diffId?: string;
  mediaType: string;
  /** false: the manifest names the blob but the archive leaves it out. */
  present?: boolean;
}

/** An OCI archive of one image: oci-layout, index.json → manifest → config + layers. */
async function ociArchive(layers: OciLayer[], options: { extra?: TarFile[]; wrapIndexes?: number } = {}): Promise<Buffer> {
  const config = configFor(layers.map((l) => l.diffId ?? `sha256:${sha256Hex(l.bytes)}`));
  const blobs: TarFile[] = [];
  const blob = (content: Buffer | string) => {
    const hex = sha256Hex(content);
    blobs.push({ name: `blobs/sha256/${hex}`, content });
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(content) };
  };
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) },
    layers: layers.map((l) => {
      const descriptor = { mediaType: l.mediaType, digest: `sha256:${sha256Hex(l.bytes)}`, size: l.bytes.length };
      if (l.present !== false) blob(l.bytes);
      return descriptor;
    }),
  });
  let top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...blob(manifest) };
  for (let i = 0; i < (options.wrapIndexes ?? 0); i++) {
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [top] });
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...blob(index) };
  }
  const index = {
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': 'hostile/oci:1' } }],
  };
  return makeTar([
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', content: JSON.stringify(index) },
    ...blobs,
    ...(options.extra ?? []),
  ]);
}

/** The bundle's metadata, parsed, and a bundle rebuilt with `edit` applied to it. */
async function editMetadata(ctx: Context, edit: (metadata: Record<string, unknown>) => void): Promise<Buffer> {
  return repack(ctx.bundleBytes, (files) => {
    const meta = files[0]!;
    const parsed = JSON.parse(String(meta.content)) as Record<string, unknown>;
    edit(parsed);
    meta.content = JSON.stringify(parsed, null, 2);
  });
}

/** 2 GiB of zeros as 32 concatenated gzip members of 64 MiB each (about 2 MB). */
function gzipBomb(): Buffer {
  const member = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
  return Buffer.concat(Array.from({ length: 32 }, () => member));
}

const ARCHIVE_COMMANDS = ['list', 'diff-base', 'diff-target'] as const;
const BUNDLE_COMMANDS = ['load', 'verify'] as const;

function each<C extends Command>(commands: readonly C[], expectation: Expectation): Record<C, Expectation> {
  return Object.fromEntries(commands.map((c) => [c, expectation])) as Record<C, Expectation>;
}

export const CASES: HostileCase[] = [
  // ---- corrupt bytes -------------------------------------------------------------------------
  {
    name: 'base-layer-flipped-byte',
    input: 'docker-base.tar with one byte flipped in a layer the bundle takes from the base',
    build: (ctx, path) => put(path, flipInEntry(ctx.baseBytes, BASE_LAYER_2)),
    runs: {
      list: fails('DigestMismatchError', /layer .*555de935cb60.* is corrupt/),
      'diff-base': ok, // a base costs only metadata: its layer bytes are not read
      'load-base': fails('DigestMismatchError', /layer .*555de935cb60.* is corrupt/),
    },
  },
  {
    name: 'target-layer-flipped-byte',
    input: "docker-app.tar with one byte flipped in the target's own layer",
    build: (ctx, path) => put(path, flipInEntry(ctx.targetBytes, TARGET_NEW_LAYER)),
    runs: {
      list: fails('DigestMismatchError', /layer .*1cc60698.* is corrupt/),
      'list-stdin': fails('DigestMismatchError', /layer .*1cc60698.* is corrupt/),
      'diff-target': fails('DigestMismatchError', /layer .*1cc60698.* is corrupt/),
    },
  },
  {
    name: 'config-flipped-byte',
    input: 'docker-app.tar with one byte flipped in the image config',
    build: (ctx, path) => put(path, flipInEntry(ctx.targetBytes, /^[0-9a-f]{64}\.json$/)),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /config '7a561021.*\.json' does not match its digest/)),
  },
  {
    name: 'manifest-flipped-byte-json',
    input: "docker-app.tar with manifest.json's first byte flipped ('[' → 'Z')",
    build: (ctx, path) => put(path, flipInEntry(ctx.targetBytes, 'manifest.json', 0)),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /'manifest\.json' is not valid JSON/)),
      'list-stdin': fails('ArchiveError', /'manifest\.json' is not (valid )?JSON/),
    },
  },
  {
    name: 'manifest-flipped-byte-layer-path',
    input: "docker-app.tar with a byte of a layer path in manifest.json flipped ('1cc6…' → '0cc6…')",
    build: async (ctx, path) => {
      const manifest = entryData(ctx.targetBytes, 'manifest.json');
      return put(path, flipInEntry(ctx.targetBytes, 'manifest.json', manifest.indexOf('1cc60698')));
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /layer 3 \('0cc60698.*\/layer\.tar'.*\) is missing from the archive/)),
  },
  {
    name: 'oci-manifest-flipped-byte',
    input: 'podman-app.oci-archive.tar with one byte flipped in the image manifest blob',
    build: async (ctx, path) => {
      const bytes = await readFixture(ctx, 'podman-app.oci-archive.tar');
      const index = JSON.parse(entryData(bytes, 'index.json').toString()) as { manifests: { digest: string }[] };
      return put(path, flipInEntry(bytes, `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`));
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /'blobs\/sha256\/[0-9a-f]{64}' does not match its digest/)),
  },
  {
    name: 'oci-gzip-layer-flipped-byte',
    input: 'podman-app.oci-archive.tar with one byte flipped in the middle of a gzip layer blob',
    build: async (ctx, path) => {
      const bytes = await readFixture(ctx, 'podman-app.oci-archive.tar');
      const gz = tarEntries(bytes)
        .filter((e) => bytes[e.dataOffset] === 0x1f && bytes[e.dataOffset + 1] === 0x8b)
        .sort((a, b) => b.size - a.size)[0]!;
      return put(path, flipInEntry(bytes, gz.name));
    },
    runs: {
      list: fails('DigestMismatchError', /layer .* is corrupt/),
      'diff-target': fails('DigestMismatchError', /layer .* is corrupt/),
      'diff-base': ok,
    },
  },
  // ---- names and links ----------------------------------------------------------------------
  {
    name: 'dotdot-entry',
    input: "docker-app.tar plus an entry named '../evil'",
    build: async (ctx, path) => put(path, await repack(ctx.targetBytes, (f) => [{ name: '../evil', content: 'x' }, ...f])),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /entry '\.\.\/evil' points outside the archive/)),
      'load-base': fails('ArchiveError', /'\.\.\/evil' points outside/),
    },
  },
  {
    name: 'dotdot-inner-entry',
    input: "docker-app.tar plus an entry named 'blobs/../../evil'",
    build: async (ctx, path) => put(path, await repack(ctx.targetBytes, (f) => [...f, { name: 'blobs/../../evil', content: 'x' }])),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /entry 'blobs\/\.\.\/\.\.\/evil' points outside the archive/)),
  },
  {
    name: 'control-chars-in-entry-name',
    input: "docker-app.tar plus an entry '../' + ESC ']0;pwned' BEL ESC '[2J' LF 'fake line' (terminal escapes, a newline)",
    build: async (ctx, path) =>
      put(path, await repack(ctx.targetBytes, (f) => [{ name: '../\u001b]0;pwned\u0007\u001b[2J\nfake line', content: 'x' }, ...f])),
    runs: {
      list: fails('ArchiveError', /entry '\.\.\/\\x1b\]0;pwned\\x07\\x1b\[2J\\nfake line' points outside the archive/),
      'list-stdin': fails('ArchiveError', /entry '\.\.\/\\x1b\]0;pwned\\x07\\x1b\[2J\\nfake line' points outside the archive/),
    },
  },
  {
    name: 'absolute-entry',
    input: "docker-app.tar plus an entry named '/tmp/ddiff-hostile-evil'",
    build: async (ctx, path) => put(path, await repack(ctx.targetBytes, (f) => [...f, { name: '/tmp/ddiff-hostile-evil', content: 'x' }])),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /entry '\/tmp\/ddiff-hostile-evil' has an absolute path/)),
      'list-stdin': fails('ArchiveError', /absolute path/),
    },
  },
  {
    name: 'symlink-layer-outside',
    input: "docker-base.tar whose layer.tar is a symlink to '../../etc/passwd'",
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.baseBytes, (f) =>
          f.map((x) => (x.name === BASE_LAYER_2 ? { name: x.name, type: 'symlink', linkname: '../../etc/passwd' } : x)),
        ),
      ),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /symlink '5cbab87e.*\/layer\.tar' points outside the archive/)),
      'load-base': fails('ArchiveError', /points outside the archive/),
    },
  },
  {
    name: 'symlink-blob-absolute',
    input: "an OCI archive whose layer blob is a symlink to '/etc/passwd'",
    build: async (_ctx, path) => {
      const layer = await smallLayer('a');
      const archive = await ociArchive([{ bytes: layer, mediaType: 'application/vnd.oci.image.layer.v1.tar', present: false }], {
        extra: [{ name: `blobs/sha256/${sha256Hex(layer)}`, type: 'symlink', linkname: '/etc/passwd' }],
      });
      return put(path, archive);
    },
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /symlink 'blobs\/sha256\/[0-9a-f]{64}' points to an absolute path '\/etc\/passwd'/)),
      'list-stdin': fails('ArchiveError', /absolute path '\/etc\/passwd'/),
    },
  },
  {
    name: 'hardlink-outside',
    input: "docker-base.tar whose layer.tar is a hard link to '../outside.tar'",
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.baseBytes, (f) =>
          f.map((x) => (x.name === BASE_LAYER_2 ? { name: x.name, type: 'link', linkname: '../outside.tar' } : x)),
        ),
      ),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /'\.\.\/outside\.tar' points outside the archive/)),
      'load-base': fails('ArchiveError', /outside the archive/),
    },
  },
  {
    name: 'hardlink-absolute',
    input: "docker-base.tar whose layer.tar is a hard link to '/etc/passwd'",
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.baseBytes, (f) =>
          f.map((x) => (x.name === BASE_LAYER_2 ? { name: x.name, type: 'link', linkname: '/etc/passwd' } : x)),
        ),
      ),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /'\/etc\/passwd' has an absolute path/)),
  },
  {
    name: 'symlink-loop',
    input: 'a docker-archive whose two layer.tar entries are symlinks to each other',
    build: async (_ctx, path) =>
      put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${sha256Hex(await smallLayer('a'))}`, `sha256:${sha256Hex(await smallLayer('b'))}`],
          files: [
            { name: 'l0/layer.tar', type: 'symlink', linkname: '../l1/layer.tar' },
            { name: 'l1/layer.tar', type: 'symlink', linkname: '../l0/layer.tar' },
          ],
          manifestLayers: ['l0/layer.tar', 'l1/layer.tar'],
        }),
      ),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /links starting at 'l0\/layer\.tar' form a loop/)),
      'list-stdin': fails('ArchiveError', /form a loop/),
    },
  },
  {
    name: 'hardlink-loop',
    input: 'a docker-archive whose layer.tar is a hard link to itself',
    build: async (_ctx, path) =>
      put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${sha256Hex(await smallLayer('a'))}`],
          files: [{ name: 'l0/layer.tar', type: 'link', linkname: 'l0/layer.tar' }],
          manifestLayers: ['l0/layer.tar'],
        }),
      ),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /links starting at 'l0\/layer\.tar' form a loop/)),
  },
  {
    name: 'duplicate-manifest',
    input: 'docker-app.tar with a second, different manifest.json appended',
    build: async (ctx, path) =>
      put(path, await repack(ctx.targetBytes, (f) => [...f, { name: 'manifest.json', content: '[{"Config":"x.json","Layers":[]}]' }])),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /entry 'manifest\.json' appears more than once/)),
      'list-stdin': fails('ArchiveError', /appears more than once/),
    },
  },
  {
    name: 'duplicate-layer',
    input: "docker-app.tar with a second copy of the target's layer.tar holding other bytes",
    build: async (ctx, path) =>
      put(path, await repack(ctx.targetBytes, (f) => [...f, { name: `./${TARGET_NEW_LAYER}`, content: 'other bytes' }])),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /entry '1cc60698.*\/layer\.tar' appears more than once/)),
  },
  // ---- inconsistent metadata ----------------------------------------------------------------
  {
    name: 'manifest-missing-layer',
    input: 'a docker-archive whose manifest names a layer file that is not in it',
    build: async (_ctx, path) => {
      const [a, b] = [await smallLayer('a'), await smallLayer('b')];
      return put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${sha256Hex(a)}`, `sha256:${sha256Hex(b)}`],
          files: [{ name: 'l0/layer.tar', content: a }],
          manifestLayers: ['l0/layer.tar', 'l1/layer.tar'],
        }),
      );
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /layer 2 \('l1\/layer\.tar'.*\) is missing from the archive/)),
  },
  {
    name: 'manifest-names-outside-paths',
    input: "a docker-archive whose manifest names its layer '/etc/passwd'",
    build: async (_ctx, path) => {
      const a = await smallLayer('a');
      return put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${sha256Hex(a)}`],
          files: [{ name: 'l0/layer.tar', content: a }],
          manifestLayers: ['/etc/passwd'],
        }),
      );
    },
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /the manifest names '\/etc\/passwd', which is not inside the archive/)),
      'list-stdin': fails('ArchiveError', /not inside the archive/),
    },
  },
  {
    name: 'manifest-config-climbs-out',
    input: "docker-app.tar whose manifest names its config '../config.json'",
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.targetBytes, (f) =>
          f.map((x) =>
            x.name === 'manifest.json' ? { ...x, content: String(x.content).replace(/"Config":"[^"]*"/, '"Config":"../config.json"') } : x,
          ),
        ),
      ),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /the manifest names '\.\.\/config\.json', which is not inside the archive/)),
  },
  {
    name: 'manifest-missing-config',
    input: 'docker-app.tar without its config entry',
    build: async (ctx, path) => put(path, await repack(ctx.targetBytes, (f) => f.filter((x) => !/^[0-9a-f]{64}\.json$/.test(x.name)))),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /'7a561021.*\.json' is missing from the archive/)),
  },
  {
    name: 'oci-missing-layer-blob',
    input: 'an OCI archive whose manifest names a layer blob that is not in it',
    build: async (_ctx, path) =>
      put(path, await ociArchive([{ bytes: await smallLayer('a'), mediaType: 'application/vnd.oci.image.layer.v1.tar', present: false }])),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /layer 1 \('blobs\/sha256\/[0-9a-f]{64}'.*\) is missing from the archive/)),
  },
  {
    name: 'diff-ids-count-mismatch',
    input: 'a docker-archive whose config lists 2 diff_ids for 1 layer',
    build: async (_ctx, path) => {
      const a = await smallLayer('a');
      const id = `sha256:${sha256Hex(a)}`;
      return put(
        path,
        await dockerArchive({ diffIds: [id, id], files: [{ name: 'l0/layer.tar', content: a }], manifestLayers: ['l0/layer.tar'] }),
      );
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /lists 2 diff_ids but the manifest names 1 layer/)),
  },
  {
    name: 'config-not-an-object',
    input: 'a docker-archive whose config is a JSON array',
    build: async (_ctx, path) => {
      const a = await smallLayer('a');
      return put(
        path,
        await dockerArchive({
          diffIds: [],
          config: '[1,2,3]',
          files: [{ name: 'l0/layer.tar', content: a }],
          manifestLayers: ['l0/layer.tar'],
        }),
      );
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /config is not a JSON object/)),
  },
  {
    name: 'manifest-not-image-list',
    input: 'a docker-archive whose manifest.json entry lacks Layers',
    build: async (_ctx, path) => put(path, await makeTar([{ name: 'manifest.json', content: '[{"Config":"c.json"}]' }])),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /manifest\.json entry 1 lacks Config or Layers/)),
  },
  {
    name: 'oversize-manifest',
    input: 'docker-app.tar whose manifest.json is padded with spaces to 8 MiB + 1 byte',
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.targetBytes, (f) =>
          f.map((x) => (x.name === 'manifest.json' ? { ...x, content: String(x.content).padEnd((8 << 20) + 1, ' ') } : x)),
        ),
      ),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /'manifest\.json' is 8388609 bytes, over the 8388608-byte limit for JSON/)),
      'list-stdin': fails('ArchiveError', /8388609 bytes, over the 8388608-byte limit/),
    },
  },
  {
    name: 'oversize-config',
    input: 'an OCI archive whose config blob is 9 MiB of JSON',
    build: async (_ctx, path) => {
      const layer = await smallLayer('a');
      const config = JSON.stringify({
        os: 'linux',
        architecture: 'amd64',
        rootfs: { diff_ids: [`sha256:${sha256Hex(layer)}`] },
        pad: 'x'.repeat(9 << 20),
      });
      const archive = await ociArchive([{ bytes: layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }]);
      // Swap the config blob for the big one and point the manifest at it (re-hashing the manifest).
      return put(path, await swapOciConfig(archive, config));
    },
    runs: each(
      ARCHIVE_COMMANDS,
      fails('ArchiveError', /'blobs\/sha256\/[0-9a-f]{64}' is too large to read as metadata|over the 8388608-byte limit/),
    ),
  },
  {
    name: 'gzip-bomb-layer',
    input: 'a docker-archive whose layer is 2 GiB of zeros gzipped to about 2 MB (right diffID)',
    build: async (_ctx, path) =>
      put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${ZEROS_2GIB_SHA256}`],
          files: [{ name: 'l0/layer.tar', content: gzipBomb() }],
          manifestLayers: ['l0/layer.tar'],
        }),
      ),
    runs: { list: { code: 0, maxRssMb: 150 } },
  },
  {
    name: 'gzip-bomb-layer-wrong-diffid',
    input: 'the same gzip bomb with a wrong diffID in the config (through stdin, one pass)',
    build: async (_ctx, path) =>
      put(
        path,
        await dockerArchive({
          diffIds: [`sha256:${'0'.repeat(64)}`],
          files: [{ name: 'l0/layer.tar', content: gzipBomb() }],
          manifestLayers: ['l0/layer.tar'],
        }),
      ),
    runs: {
      'list-stdin': fails('DigestMismatchError', /layer 'l0\/layer\.tar' .* is corrupt: its uncompressed bytes hash to sha256:a7c744c1/, {
        maxRssMb: 150,
      }),
    },
  },
  // ---- not an image at all ------------------------------------------------------------------
  {
    name: 'non-image-tar',
    input: 'a tar of etc/hosts',
    build: async (_ctx, path) => put(path, await makeTar([{ name: 'etc/hosts', content: '127.0.0.1 localhost\n' }])),
    runs: {
      'diff-base': fails('ArchiveError', /not an image archive \(no manifest\.json or index\.json\)/),
      'diff-target': fails('ArchiveError', /not an image archive/),
      'load-base': fails('ArchiveError', /not an image archive/),
      load: fails('ArchiveError', /not a ddiff bundle \(first entry is not ddiff-bundle\.json\)/),
      verify: fails('ArchiveError', /not a ddiff bundle/),
    },
  },
  {
    name: 'empty-file',
    input: 'a file of 0 bytes',
    build: (_ctx, path) => put(path, ''),
    runs: {
      'diff-base': fails('ArchiveError', /file is empty/),
      'diff-target': fails('ArchiveError', /empty/),
      'load-base': fails('ArchiveError', /empty/),
      load: fails('ArchiveError', /file is empty/),
      verify: fails('ArchiveError', /file is empty/),
      'list-stdin': fails('ArchiveError', /input is empty/),
    },
  },
  {
    name: 'random-bytes',
    input: '64 KiB of pseudo-random bytes',
    build: (_ctx, path) => put(path, Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 7919 + 13) % 251))),
    runs: {
      'diff-base': fails('ArchiveError', /not a tar archive/),
      'diff-target': fails('ArchiveError', /not a tar archive/),
      load: fails('ArchiveError', /not a valid tar archive|not a tar archive/),
      verify: fails('ArchiveError', /not a valid tar archive|not a tar archive/),
    },
  },
  {
    name: 'directory-for-file',
    input: 'an empty directory where a bundle or archive file is expected',
    build: async (_ctx, path) => {
      await mkdir(path);
      return path;
    },
    runs: {
      load: fails('ArchiveError', /is a directory, expected a bundle file/),
      verify: fails('ArchiveError', /is a directory, expected a bundle file/),
      'diff-target': fails('ArchiveError', /not an image archive \(it holds no entries\)/),
      'load-base': fails('ArchiveError', /not an image archive/),
    },
  },
  {
    name: 'directory-as-output',
    input: 'an existing directory given as the -o output file',
    build: async (_ctx, path) => {
      await mkdir(path);
      await writeFile(join(path, 'keep'), 'x');
      return path;
    },
    runs: { 'diff-output': fails('DdiffError', /is a directory; -o takes a file name/) },
  },
  {
    name: 'oci-layout-dir-symlink-outside',
    input: "an OCI layout directory whose layer blob is a symlink to '/etc/passwd'",
    build: async (_ctx, path) => {
      const layer = await smallLayer('a');
      const archive = await ociArchive([{ bytes: layer, mediaType: 'application/vnd.oci.image.layer.v1.tar', present: false }]);
      await mkdir(join(path, 'blobs', 'sha256'), { recursive: true });
      for (const e of tarEntries(archive)) await writeFile(join(path, e.name), archive.subarray(e.dataOffset, e.dataOffset + e.size));
      await symlink('/etc/passwd', join(path, 'blobs', 'sha256', sha256Hex(layer)));
      return path;
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /'blobs\/sha256\/[0-9a-f]{64}' links outside the directory/)),
  },
  // ---- media types ddiff cannot ship --------------------------------------------------------
  {
    name: 'oci-foreign-layer-without-blob',
    input: 'an OCI archive with a non-distributable layer (…nondistributable.v1.tar+gzip) whose blob is absent',
    build: async (_ctx, path) => {
      const layer = await smallLayer('a');
      return put(
        path,
        await ociArchive([
          {
            bytes: gzipSync(layer),
            diffId: `sha256:${sha256Hex(layer)}`,
            mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
            present: false,
          },
          { bytes: await smallLayer('b'), mediaType: 'application/vnd.oci.image.layer.v1.tar' },
        ]),
      );
    },
    runs: each(
      ARCHIVE_COMMANDS,
      fails('ArchiveError', /layer 1 .* is a foreign\/non-distributable layer .* whose blob is not in the archive/),
    ),
  },
  {
    name: 'oci-encrypted-layer',
    input: 'an OCI archive with an encrypted layer (…tar+gzip+encrypted)',
    build: async (_ctx, path) => {
      const layer = await smallLayer('a');
      return put(
        path,
        await ociArchive([
          {
            bytes: gzipSync(layer),
            diffId: `sha256:${sha256Hex(layer)}`,
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
          },
        ]),
      );
    },
    runs: each(
      ARCHIVE_COMMANDS,
      fails('ArchiveError', /layer 1 .* is encrypted \(application\/vnd\.oci\.image\.layer\.v1\.tar\+gzip\+encrypted\)/),
    ),
  },
  {
    name: 'oci-index-nested-too-deep',
    input: 'an OCI archive whose index nests 9 indexes deep',
    build: async (_ctx, path) =>
      put(
        path,
        await ociArchive([{ bytes: await smallLayer('a'), mediaType: 'application/vnd.oci.image.layer.v1.tar' }], { wrapIndexes: 9 }),
      ),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /indexes nested deeper than 8/)),
  },
  // ---- tar header fields --------------------------------------------------------------------
  {
    name: 'header-size-huge',
    input: "docker-app.tar whose manifest.json header claims 8 GiB (size field '77777777777', checksum fixed)",
    build: async (ctx, path) =>
      put(path, patchHeader(ctx.targetBytes, entry(ctx.targetBytes, 'manifest.json').headerOffset, 124, Buffer.from('77777777777\0'))),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /archive is truncated: entry 'manifest\.json' needs 8589934591 bytes/)),
      'list-stdin': fails('ArchiveError', /truncated/),
    },
  },
  {
    name: 'header-size-base256-overflow',
    input: 'docker-app.tar whose first header has a base-256 size of 2^88 (checksum fixed)',
    build: async (ctx, path) => put(path, patchHeader(ctx.targetBytes, 0, 124, Buffer.from([0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /has a bad size/)),
  },
  {
    name: 'header-size-base256-undecodable',
    input: 'docker-app.tar whose first header has a base-256 size starting 0xC0 (tar-stream reads null; checksum fixed)',
    build: async (ctx, path) => put(path, patchHeader(ctx.targetBytes, 0, 124, Buffer.from([0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))),
    runs: {
      list: fails('ArchiveError', /entry '1cc60698.*\/' has a bad size/),
      'list-stdin': fails('ArchiveError', /entry '1cc60698.*\/' has a bad size/),
      'diff-target': fails('ArchiveError', /has a bad size/),
    },
  },
  {
    name: 'header-bad-checksum',
    input: 'docker-app.tar with a name byte of the manifest.json header flipped (checksum not fixed)',
    build: async (ctx, path) =>
      put(path, patchHeader(ctx.targetBytes, entry(ctx.targetBytes, 'manifest.json').headerOffset, 0, Buffer.from('N'), false)),
    runs: {
      ...each(ARCHIVE_COMMANDS, fails('ArchiveError', /header checksum mismatch in the header at byte \d+/)),
      'list-stdin': fails('ArchiveError', /not a valid tar archive/),
    },
  },
  {
    name: 'header-bad-octal',
    input: "docker-app.tar whose manifest.json size field is 'zzzz' (checksum fixed)",
    build: async (ctx, path) =>
      put(
        path,
        patchHeader(ctx.targetBytes, entry(ctx.targetBytes, 'manifest.json').headerOffset, 124, Buffer.from('zzzz\0\0\0\0\0\0\0\0')),
      ),
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /bad numeric field 'zzzz'/)),
  },
  {
    name: 'missing-end-of-archive-inside-pax',
    input: 'docker-app.tar cut right after a PAX header (no entry follows)',
    build: async (ctx, path) => {
      const pax = Buffer.from('30 path=blobs/sha256/whatever\n');
      const header = Buffer.alloc(512);
      header.write('PaxHeader', 0);
      header.write(`${pax.length.toString(8).padStart(11, '0')}\0`, 124);
      header.write('x', 156);
      header.write('ustar\0', 257);
      header.write('00', 263);
      const withPax = Buffer.concat([
        ctx.targetBytes.subarray(0, endOfEntries(ctx.targetBytes)),
        header,
        pax,
        Buffer.alloc(512 - pax.length),
      ]);
      return put(path, patchHeader(withPax, endOfEntries(ctx.targetBytes), 0, Buffer.alloc(0)));
    },
    runs: each(ARCHIVE_COMMANDS, fails('ArchiveError', /archive ends inside an entry/)),
  },
  // ---- bundles ------------------------------------------------------------------------------
  {
    name: 'bundle-metadata-flipped-format',
    input: 'a bundle with a byte of \'"format": "ddiff-bundle"\' flipped in its metadata',
    build: async (ctx, path) => {
      const meta = entryData(ctx.bundleBytes, 'ddiff-bundle.json');
      return put(path, flipInEntry(ctx.bundleBytes, 'ddiff-bundle.json', meta.indexOf('ddiff-bundle"')));
    },
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /not a ddiff bundle \(wrong "format"\)/)),
  },
  {
    name: 'bundle-metadata-flipped-brace',
    input: "a bundle whose metadata's first byte is flipped ('{' → 'z')",
    build: async (ctx, path) => put(path, flipInEntry(ctx.bundleBytes, 'ddiff-bundle.json', 0)),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /'ddiff-bundle\.json' is not valid JSON/)),
  },
  {
    name: 'bundle-metadata-flipped-blob-digest',
    input: "a bundle with a hex digit of the layer blob's digest flipped in blobs[] of its metadata",
    build: async (ctx, path) => {
      const meta = JSON.parse(entryData(ctx.bundleBytes, 'ddiff-bundle.json').toString()) as { blobs: { digest: string }[] };
      const text = entryData(ctx.bundleBytes, 'ddiff-bundle.json');
      const at = text.lastIndexOf(meta.blobs.at(-1)!.digest) + 7;
      return put(path, flipInEntry(ctx.bundleBytes, 'ddiff-bundle.json', at));
    },
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /blob sha256:[0-9a-f]{64} is missing from the bundle/)),
  },
  {
    name: 'bundle-metadata-wrong-blob-size',
    input: 'a bundle whose metadata records a wrong size for the layer blob',
    build: async (ctx, path) => put(path, await editMetadata(ctx, (m) => ((m.blobs as { size: number }[]).at(-1)!.size += 1))),
    runs: each(BUNDLE_COMMANDS, fails('DigestMismatchError', /blob sha256:[0-9a-f]{64} is corrupt \(\d+ bytes hashing to/)),
  },
  {
    name: 'bundle-layer-blob-flipped',
    input: 'a bundle with one byte flipped in its layer blob',
    build: async (ctx, path) => put(path, flipInEntry(ctx.bundleBytes, `blobs/sha256/${layerBlobDigest(ctx).slice(7)}`)),
    runs: each(BUNDLE_COMMANDS, fails('DigestMismatchError', /blob sha256:768e7e0e9a40.* is corrupt/)),
  },
  {
    name: 'bundle-config-blob-flipped',
    input: 'a bundle with one byte flipped in its config blob',
    build: async (ctx, path) =>
      put(path, flipInEntry(ctx.bundleBytes, 'blobs/sha256/7a56102157cc14da40cdbd131e20048570188f2777bea716748d1fa2e240d3d0')),
    runs: each(BUNDLE_COMMANDS, fails('DigestMismatchError', /blob sha256:7a56102157cc.* is corrupt/)),
  },
  {
    name: 'bundle-newer-version',
    input: 'a bundle whose metadata says version 3',
    build: async (ctx, path) => put(path, await editMetadata(ctx, (m) => (m.version = 3))),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /bundle format version 3 is newer than this ddiff supports \(2\); upgrade ddiff/)),
  },
  {
    name: 'bundle-metadata-not-first',
    input: 'a bundle whose metadata entry comes after the blobs',
    build: async (ctx, path) => put(path, await repack(ctx.bundleBytes, (f) => [...f.slice(1), f[0]!])),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /not a ddiff bundle \(first entry is not ddiff-bundle\.json\)/)),
  },
  {
    name: 'bundle-missing-blob',
    input: 'a bundle without its layer blob entry',
    build: async (ctx, path) => put(path, await repack(ctx.bundleBytes, (f) => f.slice(0, -1))),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /blob sha256:[0-9a-f]{64} is missing from the bundle/)),
  },
  {
    name: 'bundle-image-config-not-listed',
    input: "a bundle whose metadata drops the config from blobs[] (the image's ID names no listed blob)",
    build: async (ctx, path) => put(path, await editMetadata(ctx, (m) => (m.blobs = (m.blobs as unknown[]).slice(1)))),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /metadata names blob sha256:7a561021.* but does not list it/)),
  },
  {
    name: 'bundle-no-images',
    input: 'a bundle whose metadata lists no images',
    build: async (ctx, path) => put(path, await editMetadata(ctx, (m) => (m.images = []))),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /metadata lists no images/)),
  },
  {
    name: 'bundle-duplicate-blob',
    input: 'a bundle with a second layer blob entry of the same name and other bytes',
    build: async (ctx, path) => put(path, await repack(ctx.bundleBytes, (f) => [...f, { name: f.at(-1)!.name, content: 'other bytes' }])),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /entry 'blobs\/sha256\/[0-9a-f]{64}' appears more than once/)),
  },
  {
    name: 'bundle-dotdot-entry',
    input: "a bundle with an extra entry named '../evil'",
    build: async (ctx, path) => put(path, await repack(ctx.bundleBytes, (f) => [...f, { name: '../evil', content: 'x' }])),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /entry '\.\.\/evil' points outside the archive/)),
  },
  {
    name: 'bundle-symlink-blob-etc-passwd',
    input: "a bundle whose layer blob is a symlink to '/etc/passwd'",
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.bundleBytes, (f) => [...f.slice(0, -1), { name: f.at(-1)!.name, type: 'symlink', linkname: '/etc/passwd' }]),
      ),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /symlink 'blobs\/sha256\/[0-9a-f]{64}' points to an absolute path '\/etc\/passwd'/)),
  },
  {
    name: 'bundle-oversize-metadata',
    input: 'a bundle whose metadata is padded with spaces to 8 MiB + 1 byte',
    build: async (ctx, path) =>
      put(
        path,
        await repack(ctx.bundleBytes, (f) => {
          f[0]!.content = String(f[0]!.content).padEnd((8 << 20) + 1, ' ');
        }),
      ),
    runs: each(BUNDLE_COMMANDS, fails('ArchiveError', /'ddiff-bundle\.json' is 8388609 bytes, over the 8388608-byte limit for JSON/)),
  },
  {
    name: 'bundle-other-base',
    input: 'a good bundle, with --base an archive of an unrelated image (podman-app.docker-archive.tar)',
    build: async (ctx) => ctx.bundle,
    loadBase: (ctx) => ctx.other,
    runs: each(
      BUNDLE_COMMANDS,
      fails('MissingLayersError', /base .* lacks 2 layer\(s\) the bundle needs: sha256:62bec338/, { names: 'other' }),
    ),
  },
];

/** Digest of the bundle's layer blob (the one that is not the config). */
function layerBlobDigest(ctx: Context): string {
  const meta = JSON.parse(entryData(ctx.bundleBytes, 'ddiff-bundle.json').toString()) as { blobs: { digest: string; mediaType: string }[] };
  return meta.blobs.find((b) => b.mediaType.includes('layer'))!.digest;
}

export async function readFixture(ctx: Context, name: string): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return readFile(join(ctx.base, '..', name));
}

/** Replaces the config blob of a one-image OCI archive by `config` (its manifest and index re-hashed). */
async function swapOciConfig(archive: Buffer, config: string): Promise<Buffer> {
  const index = JSON.parse(entryData(archive, 'index.json').toString()) as { manifests: { digest: string; size: number }[] };
  const manifestName = `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`;
  const manifest = JSON.parse(entryData(archive, manifestName).toString()) as { config: { digest: string; size: number } };
  const oldConfig = `blobs/sha256/${manifest.config.digest.slice(7)}`;
  manifest.config = { ...manifest.config, digest: `sha256:${sha256Hex(config)}`, size: config.length };
  const manifestText = JSON.stringify(manifest);
  index.manifests[0] = { ...index.manifests[0]!, digest: `sha256:${sha256Hex(manifestText)}`, size: manifestText.length };
  return repack(archive, (files) =>
    files
      .filter((f) => f.name !== oldConfig && f.name !== manifestName)
      .map((f) => (f.name === 'index.json' ? { ...f, content: JSON.stringify(index) } : f))
      .concat([
        { name: `blobs/sha256/${sha256Hex(config)}`, content: config },
        { name: `blobs/sha256/${sha256Hex(manifestText)}`, content: manifestText },
      ]),
  );
}
