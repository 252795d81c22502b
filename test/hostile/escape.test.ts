// "Never extract untrusted archives by path to disk": archives and bundles whose entries climb out
// with '../', name absolute paths, or are symlinks / hard links to a file outside (a file whose
// digest the manifest names, so following the link would make a valid image of it). Every
// command must refuse them naming the entry, create nothing outside its own directories and
// never show a byte of the outside file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeTar, type TarFile } from '../helpers/tar.js';
import type { Context } from './corpus.js';
import { errorLine, escapeRegExp, listTree, makeContext } from './harness.js';
import { entryData, repack, sha256Hex, tarEntries } from './tar-edit.js';

let ctx: Context;
let outside = ''; // a directory outside everything ddiff is given
let secretPath = '';
const SECRET = `ddiff-secret-${process.pid}-must-never-be-read\n`;
const secretHex = sha256Hex(SECRET);

before(async () => {
  ctx = await makeContext('ddiff-hostile-escape-');
  outside = await mkdtemp(join(tmpdir(), 'ddiff-hostile-outside-'));
  secretPath = join(outside, 'secret');
  await writeFile(secretPath, SECRET);
});
after(async () => {
  if (ctx) await rm(ctx.dir, { recursive: true, force: true });
  if (outside) await rm(outside, { recursive: true, force: true });
});

/** A relative path that climbs from anywhere up to / and down to `absolute`. */
const climbTo = (absolute: string) => `${'../'.repeat(24)}${absolute.replace(/^\/+/, '')}`;

/** An OCI archive whose one layer, digest = diffID = sha256(SECRET), is the entry `layerEntry`. */
async function ociWithLayerEntry(layerEntry: TarFile): Promise<Buffer> {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${secretHex}`] } });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256Hex(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${secretHex}`, size: SECRET.length }],
  });
  return makeTar([
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    {
      name: 'index.json',
      content: JSON.stringify({
        schemaVersion: 2,
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256Hex(manifest)}`, size: manifest.length },
        ],
      }),
    },
    { name: `blobs/sha256/${sha256Hex(config)}`, content: config },
    { name: `blobs/sha256/${sha256Hex(manifest)}`, content: manifest },
    layerEntry,
  ]);
}

/** The good bundle with its layer blob replaced by `layerEntry`, the metadata naming sha256(SECRET). */
async function bundleWithLayerEntry(layerEntry: (name: string) => TarFile): Promise<Buffer> {
  const meta = JSON.parse(entryData(ctx.bundleBytes, 'ddiff-bundle.json').toString()) as {
    images: { layers: { blob?: string }[] }[];
    blobs: { digest: string; size: number; mediaType: string }[];
  };
  const layer = meta.blobs.find((b) => b.mediaType.includes('layer'))!;
  const old = layer.digest;
  layer.digest = `sha256:${secretHex}`;
  layer.size = SECRET.length;
  for (const l of meta.images[0]!.layers) if (l.blob === old) l.blob = layer.digest;
  return repack(ctx.bundleBytes, (files) => [
    { name: 'ddiff-bundle.json', content: JSON.stringify(meta) },
    ...files.slice(1).filter((f) => f.name !== `blobs/sha256/${old.slice(7)}`),
    layerEntry(`blobs/sha256/${secretHex}`),
  ]);
}

interface EscapeCase {
  name: string;
  kind: 'archive' | 'bundle' | 'directory';
  build: (path: string) => Promise<void>;
  /** What the error must name. */
  entry: () => string;
  /** Paths ddiff would create by extracting the input by name. */
  wouldCreate?: () => string[];
}

const layerName = () => `blobs/sha256/${secretHex}`;

const CASES: EscapeCase[] = [
  {
    name: "archive: '../…' entry climbing into another directory",
    kind: 'archive',
    build: async (path) =>
      writeFile(path, await repack(ctx.targetBytes, (f) => [{ name: climbTo(join(outside, 'created-by-ddiff')), content: 'x' }, ...f])),
    entry: () => climbTo(join(outside, 'created-by-ddiff')),
    wouldCreate: () => [join(outside, 'created-by-ddiff')],
  },
  {
    name: 'archive: absolute entry name',
    kind: 'archive',
    build: async (path) =>
      writeFile(path, await repack(ctx.targetBytes, (f) => [...f, { name: join(outside, 'created-abs'), content: 'x' }])),
    entry: () => join(outside, 'created-abs'),
    wouldCreate: () => [join(outside, 'created-abs')],
  },
  {
    name: 'archive: layer blob symlinked to an absolute path outside',
    kind: 'archive',
    build: async (path) => writeFile(path, await ociWithLayerEntry({ name: layerName(), type: 'symlink', linkname: secretPath })),
    entry: layerName,
  },
  {
    name: 'archive: layer blob symlinked by ../ to a file outside',
    kind: 'archive',
    build: async (path) => writeFile(path, await ociWithLayerEntry({ name: layerName(), type: 'symlink', linkname: climbTo(secretPath) })),
    entry: layerName,
  },
  {
    name: 'archive: layer blob hard-linked to a file outside',
    kind: 'archive',
    build: async (path) => writeFile(path, await ociWithLayerEntry({ name: layerName(), type: 'link', linkname: secretPath })),
    entry: () => secretPath,
  },
  {
    name: "bundle: '../…' entry climbing into another directory",
    kind: 'bundle',
    build: async (path) =>
      writeFile(path, await repack(ctx.bundleBytes, (f) => [...f, { name: climbTo(join(outside, 'created-by-load')), content: 'x' }])),
    entry: () => climbTo(join(outside, 'created-by-load')),
    wouldCreate: () => [join(outside, 'created-by-load')],
  },
  {
    name: 'bundle: layer blob symlinked to a file outside (metadata names its digest)',
    kind: 'bundle',
    build: async (path) => writeFile(path, await bundleWithLayerEntry((name) => ({ name, type: 'symlink', linkname: secretPath }))),
    entry: layerName,
  },
  {
    name: 'bundle: layer blob hard-linked by ../ to a file outside',
    kind: 'bundle',
    build: async (path) => writeFile(path, await bundleWithLayerEntry((name) => ({ name, type: 'link', linkname: climbTo(secretPath) }))),
    entry: () => climbTo(secretPath),
  },
  {
    name: 'OCI layout directory: layer blob symlinked to a file outside',
    kind: 'directory',
    build: async (path) => {
      const archive = await ociWithLayerEntry({ name: 'placeholder', content: '' });
      await mkdir(join(path, 'blobs', 'sha256'), { recursive: true });
      for (const e of tarEntries(archive)) {
        if (e.name !== 'placeholder') await writeFile(join(path, e.name), archive.subarray(e.dataOffset, e.dataOffset + e.size));
      }
      await symlink(secretPath, join(path, layerName()));
    },
    entry: layerName,
  },
];

function commandsFor(kind: EscapeCase['kind'], input: string, out: string): string[][] {
  if (kind === 'bundle') {
    return [
      ['verify', input],
      ['load', input, '--base', ctx.base, '-o', out],
      ['inspect', input],
    ];
  }
  return [
    ['list', input],
    ['diff', input, ctx.target, '-o', out],
    ['diff', ctx.base, input, '-o', out],
    ['load', ctx.bundle, '--base', input, '-o', out],
  ];
}

describe('never extracts or reads outside: ../ names, absolute names, links out', { concurrency: 3 }, () => {
  for (const [i, c] of CASES.entries()) {
    test(c.name, async () => {
      const sandbox = join(ctx.dir, `escape-${i}`);
      const work = join(sandbox, 'work');
      const tmp = join(sandbox, 'tmp');
      await mkdir(work, { recursive: true });
      await mkdir(tmp);
      const input = join(sandbox, c.kind === 'bundle' ? 'input.ddiff' : c.kind === 'directory' ? 'layout' : 'input.tar');
      await c.build(input);
      for (const argv of commandsFor(c.kind, input, join(work, 'out'))) {
        const r = await runCli(argv, { cwd: work, env: { DDIFF_TMPDIR: tmp } });
        const what = `ddiff ${argv.join(' ')}`;
        if (argv[0] === 'inspect') {
          // inspect reads only the metadata: it may succeed, but never reads the blob.
          assert.ok(r.code === 0 || r.code === 1, `${what}: exit ${r.code}`);
        } else {
          assert.equal(r.code, 1, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
          const line = errorLine(r);
          assert.match(line, new RegExp(escapeRegExp(c.entry())), `${what}: the error names the entry`);
          assert.match(line, /outside|absolute path/, `${what}: says why`);
        }
        assert.ok(!`${r.stdout}${r.stderr}`.includes(SECRET.trim()), `${what}: the outside file was read`);
        assert.deepEqual(await listTree(outside), ['secret'], `${what}: something was created outside`);
        for (const path of c.wouldCreate?.() ?? []) assert.ok(!existsSync(path), `${what}: ${path} exists`);
        assert.deepEqual(await listTree(work), [], `${what}: files left in the working directory`);
        assert.deepEqual(await listTree(tmp), [], `${what}: files left in DDIFF_TMPDIR`);
      }
    });
  }
});
