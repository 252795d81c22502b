import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { TarWriter } from '../src/tar/writer.js';

/** What a generated layer holds: a realistic mix. */
export interface LayerSpec {
  /** Many small text files (configs, sources): highly compressible. */
  textFiles: number;
  /** Large binaries (already-compressed assets, model weights): incompressible. */
  binaryBytes: number;
  /** Partly compressible data (shared libraries, executables): about 2:1. */
  mixedBytes: number;
  seed: number;
}

export interface GeneratedLayer {
  file: string;
  diffId: string;
  size: number;
}

const WORDS = 'the quick brown fox jumps over lazy dog container layer image config build run copy from env label'.split(' ');
const CHUNK = 1 << 20;

function textFile(seed: number, index: number): Buffer {
  const lines: string[] = [];
  let x = seed * 7919 + index;
  const count = 20 + (index % 200);
  for (let i = 0; i < count; i++) {
    const words: string[] = [];
    for (let w = 0; w < 10; w++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      words.push(WORDS[x % WORDS.length]!);
    }
    lines.push(`${i}: ${words.join(' ')}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** Half random, half text, in 4 KiB blocks: compresses roughly 2:1 like executables do. */
function mixedChunk(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  randomFillSync(buf);
  const text = textFile(seed, 1);
  for (let off = 0; off < size; off += 8192) buf.fill(text, off, Math.min(off + 4096, size));
  return buf;
}

async function writeEntry(pack: tar.Pack, name: string, size: number, fill: (n: number) => Buffer): Promise<void> {
  const sink = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }) as unknown as Writable;
  await new Promise<void>((resolve, reject) => {
    sink.on('error', reject);
    sink.on('finish', resolve);
    let left = size;
    const write = () => {
      while (left > 0) {
        const n = Math.min(CHUNK, left);
        left -= n;
        if (!sink.write(fill(n))) {
          sink.once('drain', write);
          return;
        }
      }
      sink.end();
    };
    write();
  });
}

/** Writes a layer tar to `file`, hashing it on the way (its diffID). */
export async function generateLayer(file: string, spec: LayerSpec): Promise<GeneratedLayer> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const written = pipeline(pack as unknown as NodeJS.ReadableStream, hasher, createWriteStream(file));
  for (let i = 0; i < spec.textFiles; i++) {
    const content = textFile(spec.seed, i);
    await writeEntry(pack, `srv/app/src/module-${spec.seed}-${i}.txt`, content.length, () => content);
  }
  if (spec.binaryBytes > 0) {
    await writeEntry(pack, `srv/app/assets/blob-${spec.seed}.bin`, spec.binaryBytes, (n) => randomFillSync(Buffer.alloc(n)));
  }
  if (spec.mixedBytes > 0) {
    await writeEntry(pack, `usr/lib/libbench-${spec.seed}.so`, spec.mixedBytes, (n) => mixedChunk(n, spec.seed));
  }
  pack.finalize();
  await written;
  return { file, diffId: `sha256:${hash.digest('hex')}`, size: (await stat(file)).size };
}

/**
 * Writes a Docker ≤ 24 style `docker save` archive of one image made of the given layers. With
 * `onlyFilesOf`, only those layers' files are stored (the manifest still names every layer):
 * the archive Docker's classic store loads when it already has the others.
 */
export async function writeDockerArchive(file: string, tag: string, layers: GeneratedLayer[], onlyFilesOf?: Set<string>): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created_by: `bench layer ${i + 1}` })),
    }),
  );
  const configHex = createHash('sha256').update(config).digest('hex');
  const writer = new TarWriter(createWriteStream(file));
  const paths: string[] = [];
  for (const layer of layers) {
    const path = `${layer.diffId.slice(7)}/layer.tar`;
    paths.push(path);
    if (onlyFilesOf && !onlyFilesOf.has(layer.diffId)) continue;
    await writer.place(path, layer.size).write(createReadStream(layer.file, { highWaterMark: CHUNK }));
  }
  await writer.addBuffer(`${configHex}.json`, config);
  await writer.addBuffer('manifest.json', JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [tag], Layers: paths }]));
  await writer.finish();
  return `sha256:${configHex}`;
}

/** Specs for a base of `totalBytes` in four layers, and a delta of about `fraction` of it. */
export function baseSpecs(totalBytes: number, seed: number): LayerSpec[] {
  const per = Math.floor(totalBytes / 4);
  return [0, 1, 2, 3].map((i) => ({
    textFiles: 200,
    binaryBytes: Math.floor(per * 0.45),
    mixedBytes: Math.floor(per * 0.45),
    seed: seed * 10 + i,
  }));
}

export function deltaSpecs(totalBytes: number, seed: number): LayerSpec[] {
  return [
    { textFiles: Math.max(50, Math.floor(totalBytes / 40_000)), binaryBytes: 0, mixedBytes: 0, seed: seed * 10 + 5 },
    { textFiles: 20, binaryBytes: Math.floor(totalBytes * 0.4), mixedBytes: Math.floor(totalBytes * 0.4), seed: seed * 10 + 6 },
  ];
}
