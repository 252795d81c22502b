// The push-fed tar reader (src/tar/push-reader.ts) against the seek-based index: the same
// entries and bytes from every repo fixture, whatever sizes the pushes come in; truncated and
// malformed streams refused; a body that asks to be waited for holds the reader back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fg from 'fast-glob';
import { TarFormatError, TarTruncatedError } from '../../src/errors.js';
import { indexTarFile } from '../../src/tar/file-index.js';
import { type PushedEntry, TarPushReader } from '../../src/tar/push-reader.js';
import { makeTar } from '../helpers/tar.js';

const FIXTURES = join(import.meta.dirname, '../../../fixtures');

interface Seen extends PushedEntry {
  body: Buffer;
}

/** Pushes `archive` in pieces of the given sizes (cycled), copying each view the moment it is given. */
async function pushAll(archive: Buffer, sizes: number[], slowBodies = false): Promise<Seen[]> {
  const seen: Seen[] = [];
  const reader = new TarPushReader((entry) => {
    const parts: Buffer[] = [];
    seen.push({
      ...entry,
      get body() {
        return Buffer.concat(parts);
      },
    });
    return (view) => {
      parts.push(Buffer.from(view));
      return slowBodies ? new Promise((resolve) => setImmediate(resolve)) : undefined;
    };
  });
  // The pushed buffer is reused, as a socket's read buffer is: views must not be kept.
  const scratch = Buffer.alloc(Math.max(...sizes));
  for (let offset = 0, i = 0; offset < archive.length; i++) {
    const size = Math.min(sizes[i % sizes.length]!, archive.length - offset);
    archive.copy(scratch, 0, offset, offset + size);
    await reader.push(scratch.subarray(0, size));
    scratch.fill(0xee);
    offset += size;
  }
  reader.end();
  return seen;
}

test('every repo fixture: the entries and bytes the seek-based index finds, in pushes of any size', async () => {
  const files = await fg('*.tar', { cwd: FIXTURES, absolute: true });
  assert.ok(files.length >= 4, `fixtures found: ${files.length}`);
  for (const file of files) {
    const archive = await readFile(file);
    const indexed = await indexTarFile(file);
    for (const sizes of [[1], [511, 513], [7, 4096, 100_000], [archive.length]]) {
      const seen = await pushAll(archive, sizes, sizes[0] === 7);
      assert.deepEqual(
        seen.map((e) => [e.name, e.type, e.size, e.linkname]),
        indexed.map((e) => [e.name, e.type, e.size, e.linkname]),
        `${file} in pushes of ${sizes}`,
      );
      for (const [i, entry] of indexed.entries()) {
        assert.ok(
          seen[i]!.body.equals(archive.subarray(entry.offset, entry.offset + (entry.type === 'file' ? entry.size : 0))),
          `${file}: ${entry.name}`,
        );
      }
    }
  }
});

test('PAX long names and a GNU long link reach the entry they precede', async () => {
  const long = `opt/${'deep/'.repeat(30)}name.txt`;
  const archive = await makeTar([
    { name: long, content: 'x'.repeat(700) },
    { name: 'l', type: 'symlink', linkname: `${'t'.repeat(120)}` },
  ]);
  const seen = await pushAll(archive, [3]);
  assert.deepEqual(
    seen.map((e) => [e.name, e.size, e.linkname]),
    [
      [long, 700, ''],
      ['l', 0, 't'.repeat(120)],
    ],
  );
});

test('a stream cut inside an entry, or with a bad header, is refused; one without end blocks is not', async () => {
  const archive = await makeTar([{ name: 'a.txt', content: 'a'.repeat(1000) }]);
  await assert.rejects(pushAll(archive.subarray(0, 900), [100]), TarTruncatedError);
  await assert.rejects(pushAll(archive.subarray(0, 300), [100]), TarTruncatedError);
  const withoutEnd = archive.subarray(0, 512 + 1024);
  assert.deepEqual(
    (await pushAll(withoutEnd, [64])).map((e) => e.name),
    ['a.txt'],
  );
  const bad = Buffer.from(archive);
  bad[0] = 0x41;
  await assert.rejects(pushAll(bad, [512]), (error: Error) => error instanceof TarFormatError && /header at byte 0/.test(error.message));
});

test('bytes after the end-of-archive blocks are not read as entries', async () => {
  const archive = await makeTar([{ name: 'a.txt', content: 'a' }]);
  const seen = await pushAll(Buffer.concat([archive, Buffer.from('trailing garbage that is no header')]), [50]);
  assert.deepEqual(
    seen.map((e) => e.name),
    ['a.txt'],
  );
});
