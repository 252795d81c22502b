import { ConfigError } from '../../src/errors.js';
// Pure logic around images: compression from magic bytes, config parsing and history ↔ layer
// matching, digests promised by entry names.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { detectCompression } from '../../src/util/compression.js';
import { layerCreators, parseConfig } from '../../src/image/config.js';
import { digestFromName } from '../../src/image/blob-names.js';
import { makeTar } from '../helpers/tar.js';

const HEX = '3fecbb9b735c0ec6a71533b4c37f281073159f0372b2232b2a2b71259a9ea7be';
const HEX2 = '030b0bec871444755725e39f899bceae5a37018e900abb1a2fadec2a6fa70f74';

function systemCompress(command: string, data: Buffer): Buffer | undefined {
  try {
    return execFileSync(command, ['-c'], { input: data, stdio: ['pipe', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

describe('detectCompression', () => {
  test('magic bytes of each compression', () => {
    assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0])), 'gzip');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58])), 'zstd');
    assert.equal(detectCompression(Buffer.from('BZh91AY&SY', 'latin1')), 'bzip2');
    assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  });

  test('output of real compressors', async () => {
    const tar = await makeTar([{ name: 'a.txt', content: 'hello '.repeat(100) }]);
    assert.equal(detectCompression(gzipSync(tar)), 'gzip');
    for (const [command, expected] of [
      ['zstd', 'zstd'],
      ['bzip2', 'bzip2'],
      ['xz', 'xz'],
    ] as const) {
      const compressed = systemCompress(command, tar);
      if (compressed) assert.equal(detectCompression(compressed.subarray(0, 6)), expected, command);
    }
  });

  test('tar, JSON and short or empty heads are not compressed', async () => {
    const tar = await makeTar([{ name: 'a.txt', content: 'x' }]);
    assert.equal(detectCompression(tar), 'none');
    assert.equal(detectCompression(Buffer.from('{"schemaVersion":2}')), 'none');
    assert.equal(detectCompression(Buffer.alloc(0)), 'none');
    assert.equal(detectCompression(Buffer.from([0x1f])), 'none', 'one byte of the gzip magic');
    assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f])), 'none', 'three bytes of the zstd magic');
    assert.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a])), 'none', 'five bytes of the xz magic');
    assert.equal(detectCompression(Buffer.from([0x8b, 0x1f])), 'none', 'gzip magic reversed');
  });

  test('labels do not matter: only the bytes', () => {
    // skopeo labels uncompressed blobs +gzip: the caller only ever passes bytes.
    assert.equal(detectCompression(Buffer.from('ustar\0', 'latin1')), 'none');
  });

  test('an uncompressed tar whose first entry is named BZh… is not bzip2 (a bzip2 stream is "BZh", 1-9, then 0x314159265359)', async () => {
    const tar = await makeTar([{ name: 'BZh.txt', content: 'not compressed' }]);
    assert.equal(detectCompression(tar.subarray(0, 6)), 'none');
    assert.equal(detectCompression(Buffer.from([0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26])), 'bzip2');
  });
});

describe('image config', () => {
  const config = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    architecture: 'arm',
    variant: 'v7',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [`sha256:${HEX}`, `sha256:${HEX2}`] },
    ...extra,
  });

  test('diffIDs and platform', () => {
    const parsed = parseConfig(config());
    assert.deepEqual(parsed.diffIds, [`sha256:${HEX}`, `sha256:${HEX2}`]);
    assert.deepEqual(parsed.platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsed.history, []);
  });

  test('missing platform fields become unknown; an empty variant is dropped', () => {
    const parsed = parseConfig({ rootfs: { diff_ids: [] }, variant: '' });
    assert.deepEqual(parsed.platform, { os: 'unknown', architecture: 'unknown' });
  });

  test('malformed configs are refused with a ConfigError', () => {
    for (const bad of [null, [], 'x', {}, { rootfs: {} }, { rootfs: { diff_ids: 'x' } }]) {
      assert.throws(() => parseConfig(bad), ConfigError, JSON.stringify(bad));
    }
    assert.throws(() => parseConfig({ rootfs: { diff_ids: ['sha256:abc'] } }), /diff_ids\[0\] is not a sha256 digest/);
    assert.throws(() => parseConfig({ rootfs: { diff_ids: [`sha256:${HEX}`, `sha512:${HEX}`] } }), /diff_ids\[1\]/);
    assert.throws(() => parseConfig({ rootfs: { diff_ids: [`SHA256:${HEX}`] } }), ConfigError);
  });

  test('history entries: created_by, created, empty_layer', () => {
    const parsed = parseConfig(
      config({
        history: [
          { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in /' },
          { created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
          { comment: 'no created_by' },
        ],
      }),
    );
    assert.deepEqual(parsed.history, [
      { createdBy: '/bin/sh -c #(nop) ADD file:abc in /', emptyLayer: false, created: '2024-01-01T00:00:00Z' },
      { createdBy: '/bin/sh -c #(nop)  CMD ["sh"]', emptyLayer: true },
      { createdBy: '', emptyLayer: false },
    ]);
  });

  test('layers are matched to history entries skipping empty_layer ones', () => {
    // Docker 20.10's fixture/whiteout shape: ENV and RUN true make no layer.
    const diffIds = ['L0', 'L1', 'L2', 'L3'].map((_, i) => `sha256:${String(i).repeat(64)}`);
    const parsed = parseConfig({
      rootfs: { diff_ids: diffIds },
      history: [
        { created_by: 'ADD rootfs.tar /' },
        { created_by: 'CMD ["sh"]', empty_layer: true },
        { created_by: 'RUN mkdir -p /opt/app' },
        { created_by: 'ENV A=1', empty_layer: true },
        { created_by: 'RUN true', empty_layer: true },
        { created_by: 'COPY app/ /opt/app/' },
        { created_by: 'LABEL x=y', empty_layer: true },
        { created_by: 'RUN rm /etc/motd' },
        { created_by: 'CMD ["run"]', empty_layer: true },
      ],
    });
    assert.deepEqual(layerCreators(parsed), ['ADD rootfs.tar /', 'RUN mkdir -p /opt/app', 'COPY app/ /opt/app/', 'RUN rm /etc/motd']);
  });

  test('empty_layer must be the boolean true to skip an entry', () => {
    const parsed = parseConfig({
      rootfs: { diff_ids: [`sha256:${HEX}`] },
      history: [{ created_by: 'A', empty_layer: 'true' }, { created_by: 'B' }],
    });
    assert.deepEqual(layerCreators(parsed), ['A']);
  });

  test('a history shorter than the layers leaves the rest undefined; none leaves all undefined', () => {
    const parsed = parseConfig(config({ history: [{ created_by: 'only one' }, { created_by: 'x', empty_layer: true }] }));
    assert.deepEqual(layerCreators(parsed), ['only one', undefined]);
    assert.deepEqual(layerCreators(parseConfig(config())), [undefined, undefined]);
  });

  test('a repeated diffID (the same layer twice) gets each its own history line', () => {
    const parsed = parseConfig({
      rootfs: { diff_ids: [`sha256:${HEX}`, `sha256:${HEX2}`, `sha256:${HEX}`] },
      history: [{ created_by: 'one' }, { created_by: 'two' }, { created_by: 'nop', empty_layer: true }, { created_by: 'three' }],
    });
    assert.deepEqual(layerCreators(parsed), ['one', 'two', 'three']);
  });
});

describe('digestFromName', () => {
  test('content-addressed names in every layout', () => {
    assert.equal(digestFromName(`blobs/sha256/${HEX}`), `sha256:${HEX}`, 'OCI blob');
    assert.equal(digestFromName(`${HEX}.json`), `sha256:${HEX}`, 'docker-archive config');
    assert.equal(digestFromName(HEX), `sha256:${HEX}`, 'dir: blob');
    assert.equal(digestFromName(`sha256:${HEX}`), `sha256:${HEX}`, 'kaniko config');
    assert.equal(digestFromName(`some/dir/blobs/sha256/${HEX}`), `sha256:${HEX}`);
  });

  test('names that promise no digest', () => {
    for (const name of [
      `${HEX}/layer.tar`, // legacy v1 id: not a digest of anything stored
      `${HEX}.tar`, // containers/image layer: named by diffID, which the caller knows anyway
      `${HEX}.tar.gz`, // kaniko names its gzip layer by its digest; not taken as a promise (the digest is computed)
      'manifest.json',
      `blobs/sha256/${HEX.slice(1)}`, // 63 hex digits
      `blobs/sha256/${HEX.toUpperCase()}`,
      `blobs/sha512/${HEX}${HEX}`,
      `x${HEX}`,
      `${HEX}.json.bak`,
    ]) {
      assert.equal(digestFromName(name), undefined, name);
    }
  });
});
