// A target's save read as it streams (src/engine/spool-save.ts and what it stands on): Docker
// ≤ 24's v1 layer IDs told from their `json`, the base's layers left out of the spool by name,
// the kept entries byte for byte, and the Engine API's streamed GET (framing, refusals, an
// answer that stops short) against a local HTTP server on a unix socket.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarFileCatalog } from '../../src/archive/tar-file-catalog.js';
import { readImages } from '../../src/archive/read.js';
import { DockerApi } from '../../src/engine/docker-api.js';
import type { BodySink } from '../../src/engine/api-stream.js';
import { daemonErrorIn, spoolSave } from '../../src/engine/spool-save.js';
import { ArchiveError, EngineError } from '../../src/errors.js';
import { chainIds, layerOfV1Json } from '../../src/image/v1-id.js';
import { sha256 } from '../../src/util/digest.js';
import { SpoolFile } from '../../src/util/spool-file.js';
import { makeTar } from '../helpers/tar.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures');
const REAL = join(import.meta.dirname, '../../../../shared/fixtures/real');
const work = await mkdtemp(join(tmpdir(), 'ddiff-save-spool-'));
after(() => rm(work, { recursive: true, force: true }));

/** Streams a file to `sink` through one reused buffer, as a socket's reads come, waiting when asked. */
function fileStream(path: string, piece = 4096, cutAt = Infinity): (sink: BodySink) => Promise<void> {
  return async (sink) => {
    const bytes = (await readFile(path)).subarray(0, cutAt);
    const scratch = Buffer.alloc(piece);
    for (let offset = 0; offset < bytes.length; offset += piece) {
      const n = bytes.copy(scratch, 0, offset, offset + piece);
      await sink(scratch.subarray(0, n));
      scratch.fill(0xee);
    }
  };
}

test('the spool file: views of a reused buffer land in order, whole, past its four pieces', async () => {
  const data = Buffer.alloc(10 << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
  const path = join(work, 'pieces.spool');
  const spool = await SpoolFile.create(path);
  const scratch = Buffer.alloc(300_000);
  let waited = 0;
  for (let offset = 0, n = 1; offset < data.length; n = (n * 7919) % 299_993) {
    const size = Math.min(n + 1, data.length - offset);
    data.copy(scratch, 0, offset, offset + size);
    const wait = spool.append(scratch.subarray(0, size));
    if (wait) {
      waited++;
      await wait;
    }
    scratch.fill(0xee);
    offset += size;
  }
  assert.equal(spool.size, data.length);
  await spool.finish();
  assert.ok((await readFile(path)).equals(data));
  assert.ok(waited > 0, 'appends outran the writes at least once');
});

test('chain IDs: the first diffID, then sha256 of "<parent chain> <diffID>"', () => {
  const a = sha256('a');
  const b = sha256('b');
  assert.deepEqual(chainIds([a, b]), [a, sha256(`${a} ${b}`)]);
  assert.deepEqual(chainIds([]), []);
});

test("Docker's v1 layer IDs are told from their json, for every Docker 20.10 save at hand", async () => {
  const archives = [join(FIXTURES, 'docker-app.tar'), join(FIXTURES, 'docker-multi.tar')];
  if (existsSync(REAL))
    archives.push(...['docker20-target-a.tar', 'docker20-whiteout.tar', 'docker20-multi-base-a-b.tar'].map((f) => join(REAL, f)));
  let told = 0;
  for (const archive of archives) {
    const catalog = await TarFileCatalog.open(archive);
    const manifest = (await catalog.readJson('manifest.json')) as { Config: string; Layers: string[] }[];
    for (const item of manifest) {
      const diffIds = ((await catalog.readJson(item.Config)) as { rootfs: { diff_ids: `sha256:${string}`[] } }).rootfs.diff_ids;
      const chain = chainIds(diffIds);
      for (const [index, path] of item.Layers.entries()) {
        const dir = path.split('/')[0]!;
        const json = (await catalog.bytes(`${dir}/json`)).toString('utf8');
        assert.equal(layerOfV1Json(dir, json, chain), index, `${archive}: ${path}`);
        told++;
        // Proof, not a guess: another image's stack, or one byte changed, tells nothing.
        assert.equal(
          layerOfV1Json(
            dir,
            json,
            chain.map((c) => sha256(c)),
          ),
          undefined,
        );
        assert.equal(layerOfV1Json(dir, json.replace('"created":"', '"created":"1'), chain), undefined);
      }
    }
  }
  assert.ok(told >= 5, `layers told: ${told}`);
  assert.equal(layerOfV1Json('ab'.repeat(32), 'not json', chainIds([sha256('x')])), undefined);
  assert.equal(layerOfV1Json('ab'.repeat(32), '{"parent":x}', chainIds([sha256('x')])), undefined);
});

for (const fixture of ['docker-app.tar', 'podman-app.docker-archive.tar']) {
  test(`${fixture}: the base's layer is passed over, every other entry kept byte for byte`, async () => {
    const archive = join(FIXTURES, fixture);
    const original = await TarFileCatalog.open(archive);
    const [image] = (await readImages(original)).images;
    const diffIds = image!.layers.map((l) => l.diffId);
    const spool = join(work, `${fixture}.spool`);
    const catalog = await spoolSave(
      fileStream(archive),
      spool,
      'docker save app:1',
      Promise.resolve({ diffIds, baseHas: new Set([diffIds[0]!]) }),
    );
    const [again] = (await readImages(catalog)).images;
    assert.equal(again!.id, image!.id);
    assert.deepEqual(
      again!.layers.map((l) => [l.diffId, l.size, l.compression]),
      image!.layers.map((l) => [l.diffId, l.size, l.compression]),
    );
    const [passed, ...kept] = again!.layers;
    assert.equal(passed!.file, undefined);
    assert.throws(
      () => catalog.open(passed!.path),
      (e: Error) => e instanceof ArchiveError && /docker save app:1: .*passed over/.test(e.message),
    );
    for (const layer of kept) {
      const bytes = await readFile(spool).then((b) => b.subarray(layer.file!.offset, layer.file!.offset + layer.size));
      assert.equal(sha256(bytes), layer.diffId, layer.path);
    }
    assert.equal((await stat(spool)).size < (await stat(archive)).size - image!.layers[0]!.size, true);
  });
}

test('a save stream with an entry named outside the archive is an error naming the save', async () => {
  const archive = join(work, 'dotdot.tar');
  await writeFile(archive, await makeTar([{ name: '../escape.txt', content: 'x' }]));
  await assert.rejects(
    spoolSave(fileStream(archive), join(work, 'dotdot.spool'), 'docker save app:1', Promise.resolve({ diffIds: [], baseHas: new Set() })),
    (e: Error) => e instanceof ArchiveError && /^docker save app:1: /.test(e.message),
  );
});

test("a save that fails after its first bytes: the daemon's error, written into the stream, is the one reported", async () => {
  const archive = await readFile(join(FIXTURES, 'docker-app.tar'));
  const failure = Buffer.from(
    '{"errorDetail":{"message":"open /var/lib/docker/vfs/dir/x: no such file"},"error":"open /var/lib/docker/vfs/dir/x: no such file"}\r\n',
  );
  const index = await TarFileCatalog.open(join(FIXTURES, 'docker-app.tar'));
  const second = index.location(index.names().find((n) => n.endsWith('/layer.tar'))!)!.offset;
  // At a header (the failure between entries), and inside an entry (the failure in a layer).
  for (const [cut, piece] of [
    [second - 512, 700],
    [second + 100, 700],
    [second + 100, 65_536],
  ] as const) {
    const path = join(work, `failed-${cut}.tar`);
    await writeFile(path, Buffer.concat([archive.subarray(0, cut), failure]));
    await assert.rejects(
      spoolSave(
        fileStream(path, piece),
        join(work, `failed-${cut}-${piece}.spool`),
        'docker save app:1',
        Promise.resolve({ diffIds: [], baseHas: new Set() }),
      ),
      (e: Error) => e instanceof EngineError && e.message === 'docker save app:1 failed: open /var/lib/docker/vfs/dir/x: no such file',
    );
  }
  assert.equal(daemonErrorIn(Buffer.from('no error here')), undefined);
  assert.equal(daemonErrorIn(Buffer.from('xx{"errorDetail":{"message":"cut sh')), 'the save failed midway');
});

test('a save stream that stops inside an entry is an error naming the save; the spool is closed', async () => {
  const archive = join(FIXTURES, 'docker-app.tar');
  const spool = join(work, 'cut.spool');
  const diffIds = [sha256('x')];
  await assert.rejects(
    spoolSave(fileStream(archive, 1000, 5000), spool, 'docker save app:1', Promise.resolve({ diffIds, baseHas: new Set() })),
    (e: Error) => e instanceof ArchiveError && /^docker save app:1: cannot read the archive stream: archive is truncated/.test(e.message),
  );
});

/** A local HTTP server on a unix socket; `handle` answers every request. */
async function server(handle: Parameters<typeof createServer>[1]): Promise<{ api: DockerApi; close: () => Promise<void> }> {
  const path = join(work, `s-${Math.random().toString(16).slice(2)}.sock`);
  const s: Server = createServer(handle);
  await new Promise<void>((resolve) => s.listen(path, resolve));
  return { api: new DockerApi(path), close: () => new Promise((resolve) => s.close(() => resolve())) };
}

async function collect(api: DockerApi, slow = false): Promise<Buffer> {
  const parts: Buffer[] = [];
  await api.stream(
    '/images/get?names=x',
    (view) => {
      parts.push(Buffer.from(view));
      return slow ? new Promise((resolve) => setTimeout(resolve, 1)) : undefined;
    },
    'docker save x',
  );
  return Buffer.concat(parts);
}

test('the streamed GET: chunked and sized bodies whole, in order, with a sink that makes it wait', async () => {
  const payload = Buffer.alloc(3 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  const chunked = await server((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    for (let at = 0; at < payload.length; at += 100_003) res.write(payload.subarray(at, at + 100_003));
    res.end();
  });
  const sized = await server((_req, res) => {
    res.writeHead(200, { 'Content-Length': payload.length });
    res.end(payload);
  });
  try {
    assert.ok((await collect(chunked.api)).equals(payload));
    assert.ok((await collect(chunked.api, true)).equals(payload));
    assert.ok((await collect(sized.api, true)).equals(payload));
    // A sink that reads each view only after a wait: the view stays whole while the socket
    // waits, and the GET settles only once the sink is done with the last one.
    for (const api of [chunked.api, sized.api]) {
      const parts: Buffer[] = [];
      await api.stream(
        '/images/get?names=x',
        async (view) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          parts.push(Buffer.from(view));
        },
        'docker save x',
      );
      assert.ok(Buffer.concat(parts).equals(payload));
    }
  } finally {
    await chunked.close();
    await sized.close();
  }
});

test("the streamed GET: the daemon's refusal, and an answer cut short, are EngineErrors", async () => {
  const refusing = await server((_req, res) => {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"message":"reference does not exist"}');
  });
  const badLength = await server((_req, res) => {
    res.socket?.end('HTTP/1.1 200 OK\r\nContent-Length: x12\r\n\r\n');
  });
  const cutting = await server((_req, res) => {
    res.writeHead(200);
    res.write(Buffer.alloc(30_000));
    setTimeout(() => res.socket?.destroy(), 20);
  });
  try {
    await assert.rejects(collect(badLength.api), (e: Error) => /bad Content-Length 'x12'/.test(e.message));
    await assert.rejects(
      collect(refusing.api),
      (e: Error) => e instanceof EngineError && e.message === 'docker save x failed: reference does not exist',
    );
    await assert.rejects(
      collect(cutting.api),
      (e: Error) =>
        e instanceof EngineError && /^docker save x failed: the connection closed after 30000 bytes of the answer$/.test(e.message),
    );
  } finally {
    await refusing.close();
    await cutting.close();
    await badLength.close();
  }
});
