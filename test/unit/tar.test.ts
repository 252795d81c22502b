import { TarFormatError, TarTruncatedError, UnsafePathError } from '../../src/errors.js';
// Pure logic of src/tar: header decoding (ustar, prefix field, base-256 sizes, PAX records,
// checksums), entry-name normalization, and the seek-based index built on them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCK, decodeHeader, decodePax, isZeroBlock, paddedSize } from '../../src/tar/header.js';
import { normalizeEntryName, symlinkTarget } from '../../src/tar/names.js';
import { indexTarFile } from '../../src/tar/file-index.js';
import { makeTar } from '../helpers/tar.js';

interface HeaderFields {
  name?: string;
  size?: number | Buffer;
  flag?: string;
  linkname?: string;
  prefix?: string;
  /** 8 bytes at 257: POSIX `ustar\0` + `00`, GNU `ustar  \0`, or none. */
  magic?: 'posix' | 'gnu' | 'none';
  checksum?: 'correct' | 'wrong' | 'space-terminated';
}

/** Builds one header block field by field, with a correct checksum unless asked otherwise. */
function header(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name ?? 'file.txt', 0, 100, 'utf8');
  block.write('0000644\0', 100, 8, 'latin1');
  block.write('0000000\0', 108, 8, 'latin1');
  block.write('0000000\0', 116, 8, 'latin1');
  const size = fields.size ?? 0;
  if (Buffer.isBuffer(size)) size.copy(block, 124);
  else block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1');
  block.write('00000000000\0', 136, 12, 'latin1');
  block.write(fields.flag ?? '0', 156, 1, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8');
  const magic = fields.magic ?? 'posix';
  if (magic === 'posix') block.write('ustar\u000000', 257, 8, 'latin1');
  if (magic === 'gnu') block.write('ustar  \0', 257, 8, 'latin1');
  if (fields.prefix) block.write(fields.prefix, 345, 155, 'utf8');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  if (fields.checksum === 'wrong') sum += 1;
  const text = sum.toString(8).padStart(6, '0');
  block.write(fields.checksum === 'space-terminated' ? `${text} \0` : `${text}\0 `, 148, 8, 'latin1');
  return block;
}

describe('tar header decoding', () => {
  test('a ustar regular file', () => {
    const h = decodeHeader(header({ name: 'etc/hosts', size: 1234 }));
    assert.deepEqual(h, { name: 'etc/hosts', size: 1234, type: 'file', flag: '0', linkname: '' });
  });

  test('entry types from the typeflag', () => {
    assert.equal(decodeHeader(header({ flag: '5', name: 'dir/' })).type, 'directory');
    assert.equal(decodeHeader(header({ flag: '\0' })).type, 'file', 'old V7 NUL typeflag is a regular file');
    assert.equal(decodeHeader(header({ flag: '7' })).type, 'file', 'contiguous file');
    const symlink = decodeHeader(header({ flag: '2', name: 'a/layer.tar', linkname: '../b/layer.tar' }));
    assert.equal(symlink.type, 'symlink');
    assert.equal(symlink.linkname, '../b/layer.tar');
    assert.equal(decodeHeader(header({ flag: '1', linkname: 'other' })).type, 'link');
    for (const flag of ['x', 'g', 'L', 'K', '3', '4', '6']) {
      const h = decodeHeader(header({ flag }));
      assert.equal(h.type, 'other', `flag ${flag}`);
      assert.equal(h.flag, flag);
    }
  });

  test('a name of exactly 100 bytes (no NUL terminator) is read whole', () => {
    const name = `${'d'.repeat(49)}/${'f'.repeat(50)}`;
    assert.equal(name.length, 100);
    assert.equal(decodeHeader(header({ name, linkname: 'x'.repeat(100), flag: '2' })).name, name);
    assert.equal(decodeHeader(header({ name, linkname: 'x'.repeat(100), flag: '2' })).linkname, 'x'.repeat(100));
  });

  test('the POSIX prefix field is joined to the name', () => {
    const h = decodeHeader(header({ name: 'file.txt', prefix: 'opt/app/some/long/directory' }));
    assert.equal(h.name, 'opt/app/some/long/directory/file.txt');
  });

  test('the prefix area is ignored in GNU and pre-POSIX headers', () => {
    assert.equal(decodeHeader(header({ name: 'f', prefix: 'junk', magic: 'gnu' })).name, 'f');
    assert.equal(decodeHeader(header({ name: 'f', prefix: 'junk', magic: 'none' })).name, 'f');
  });

  test('base-256 sizes (GNU, for entries of 8 GiB and more)', () => {
    const field = Buffer.alloc(12);
    field[0] = 0x80;
    field.writeUIntBE(10 * 1024 ** 3, 6, 6); // 10 GiB, big-endian in the low bytes
    assert.equal(decodeHeader(header({ size: field })).size, 10 * 1024 ** 3);
    const small = Buffer.alloc(12);
    small[0] = 0x80;
    small[11] = 0x2a;
    assert.equal(decodeHeader(header({ size: small })).size, 42);
  });

  test('octal numbers with space or NUL terminators and leading spaces', () => {
    const spaced = Buffer.from('00000001750 ', 'latin1');
    assert.equal(decodeHeader(header({ size: spaced })).size, 0o1750);
    const padded = Buffer.from('     1750\0\0\0', 'latin1');
    assert.equal(decodeHeader(header({ size: padded })).size, 0o1750);
    const empty = Buffer.alloc(12);
    assert.equal(decodeHeader(header({ size: empty })).size, 0);
  });

  test('a non-octal number is refused', () => {
    const bad = Buffer.from('0000000019a\0', 'latin1');
    assert.throws(
      () => decodeHeader(header({ size: bad })),
      (e: unknown) => e instanceof TarFormatError && /bad numeric field/.test((e as Error).message),
    );
  });

  test('checksums: both terminator styles pass, a wrong one throws', () => {
    assert.doesNotThrow(() => decodeHeader(header({ checksum: 'space-terminated' })));
    assert.throws(
      () => decodeHeader(header({ checksum: 'wrong' })),
      (e: unknown) => e instanceof TarFormatError && /checksum/.test((e as Error).message),
    );
    const flipped = header({ name: 'etc/hosts' });
    flipped[3] ^= 0x01;
    assert.throws(() => decodeHeader(flipped), TarFormatError);
  });

  test('random bytes and a short block are not headers', () => {
    const noise = Buffer.alloc(BLOCK, 0x41);
    assert.throws(() => decodeHeader(noise), TarFormatError);
    assert.throws(() => decodeHeader(Buffer.alloc(100)), /short header block/);
  });

  test('headers written by tar-stream decode to the same names and sizes', async () => {
    const archive = await makeTar([
      { name: 'a/b.txt', content: 'hello' },
      { name: 'link', type: 'symlink', linkname: 'a/b.txt' },
    ]);
    const first = decodeHeader(archive.subarray(0, BLOCK));
    assert.equal(first.name, 'a/b.txt');
    assert.equal(first.size, 5);
    const second = decodeHeader(archive.subarray(BLOCK + paddedSize(5), 2 * BLOCK + paddedSize(5)));
    assert.deepEqual([second.name, second.type, second.linkname], ['link', 'symlink', 'a/b.txt']);
  });

  test('isZeroBlock and paddedSize', () => {
    assert.equal(isZeroBlock(Buffer.alloc(BLOCK)), true);
    const almost = Buffer.alloc(BLOCK);
    almost[511] = 1;
    assert.equal(isZeroBlock(almost), false);
    assert.deepEqual([0, 1, 511, 512, 513, 1024].map(paddedSize), [0, 512, 512, 512, 1024, 1024]);
  });
});

describe('PAX records', () => {
  const record = (key: string, value: string): string => {
    // The length counts itself, in bytes.
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length++;
    return `${length}${body}`;
  };

  test('path, linkpath and size records', () => {
    const data = Buffer.from(record('path', 'opt/app/x'.repeat(20)) + record('linkpath', 'target') + record('size', '8589934592'));
    assert.deepEqual(decodePax(data), { path: 'opt/app/x'.repeat(20), linkpath: 'target', size: '8589934592' });
  });

  test('lengths count UTF-8 bytes, not characters', () => {
    const name = 'opt/app/données-ünïcødé.txt';
    const data = Buffer.from(record('path', name) + record('mtime', '1700000000.5'));
    assert.deepEqual(decodePax(data), { path: name, mtime: '1700000000.5' });
  });

  test('a value may contain = and spaces', () => {
    const data = Buffer.from(record('SCHILY.xattr.user.note', 'a=b c'));
    assert.deepEqual(decodePax(data), { 'SCHILY.xattr.user.note': 'a=b c' });
  });

  test('a record whose length runs past the data is refused', () => {
    assert.throws(
      () => decodePax(Buffer.from('99 path=x\n')),
      (e: unknown) => e instanceof TarFormatError && /bad PAX record/.test((e as Error).message),
    );
    assert.throws(() => decodePax(Buffer.from('x path=y\n')), TarFormatError);
  });

  test('later records override earlier ones', () => {
    assert.deepEqual(decodePax(Buffer.from(record('path', 'a') + record('path', 'b'))), { path: 'b' });
  });
});

describe('entry names', () => {
  test('normalization: ./ prefixes, duplicate and trailing slashes, inner ..', () => {
    assert.equal(normalizeEntryName('./index.json'), 'index.json');
    assert.equal(normalizeEntryName('./blobs/sha256/'), 'blobs/sha256');
    assert.equal(normalizeEntryName('blobs//sha256///abc'), 'blobs/sha256/abc');
    assert.equal(normalizeEntryName('a/./b/../c'), 'a/c');
    assert.equal(normalizeEntryName('./'), '');
    assert.equal(normalizeEntryName('.'), '');
    assert.equal(normalizeEntryName('a/..'), '');
    assert.equal(normalizeEntryName('sha256:abc'), 'sha256:abc');
  });

  test('names that leave the archive are refused', () => {
    for (const name of ['../x', '..', 'a/../../x', './../x', 'a/b/../../../etc/passwd']) {
      assert.throws(() => normalizeEntryName(name), UnsafePathError, name);
    }
    assert.throws(() => normalizeEntryName('/etc/passwd'), /absolute path/);
    // A name merely starting with dots is fine.
    assert.equal(normalizeEntryName('..foo/bar'), '..foo/bar');
    assert.equal(normalizeEntryName('.wh..wh..opq'), '.wh..wh..opq');
  });

  test("symlink targets are resolved against the link's directory", () => {
    const v1 = '55ed556a1dbc60147f2b9cac0bca46d37c3f20e7cc551c6444573ee04b400694';
    const other = '9973b482ea3b95391d0d895436cd13f71adfda0c1dcac8f28b4d918b29e538bd';
    assert.equal(symlinkTarget(`${v1}/layer.tar`, `../${other}/layer.tar`), `${other}/layer.tar`);
    assert.equal(symlinkTarget(`${v1}/layer.tar`, '../3fec.tar'), '3fec.tar');
    assert.equal(symlinkTarget('a/b/link', 'c'), 'a/b/c');
    assert.equal(symlinkTarget('link', './c'), 'c');
  });

  test('symlinks that leave the archive or are absolute are refused', () => {
    assert.throws(
      () => symlinkTarget('a/layer.tar', '../../etc/passwd'),
      (e: unknown) => e instanceof UnsafePathError && /outside the archive/.test((e as Error).message),
    );
    assert.throws(() => symlinkTarget('layer.tar', '../x'), UnsafePathError);
    assert.throws(
      () => symlinkTarget('a/layer.tar', '/etc/passwd'),
      (e: unknown) => e instanceof UnsafePathError && /absolute/.test((e as Error).message),
    );
  });
});

describe('seek-based tar index', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ddiff-tar-index-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('offsets, sizes, types and PAX long names of entries written by tar-stream', async () => {
    const long = `opt/app/${'deep/'.repeat(25)}file-with-a-long-name.txt`;
    const archive = await makeTar([
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a.txt', content: 'abc' },
      { name: long, content: 'x'.repeat(600) },
      { name: 'l', type: 'symlink', linkname: 'dir/a.txt' },
    ]);
    const path = join(dir, 'a.tar');
    await writeFile(path, archive);
    const entries = await indexTarFile(path);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.size, e.linkname]),
      [
        ['dir/', 'directory', 0, ''],
        ['dir/a.txt', 'file', 3, ''],
        [long, 'file', 600, ''],
        ['l', 'symlink', 0, 'dir/a.txt'],
      ],
    );
    const a = entries[1]!;
    assert.equal(archive.toString('utf8', a.offset, a.offset + a.size), 'abc');
    const big = entries[2]!;
    assert.equal(archive.toString('utf8', big.offset, big.offset + big.size), 'x'.repeat(600));
  });

  test('GNU long names (L) and a PAX size override', async () => {
    const longName = `${'n'.repeat(150)}.txt`;
    const data = Buffer.from(`${longName}\0`);
    const paxBody = ' size=5\n';
    const pax = Buffer.from(`${paxBody.length + 1}${paxBody}`);
    const blocks = [
      header({ name: '././@LongLink', flag: 'L', size: data.length, magic: 'gnu' }),
      Buffer.concat([data], paddedSize(data.length)),
      header({ name: 'truncated-name', size: 3, magic: 'gnu' }),
      Buffer.concat([Buffer.from('abc')], BLOCK),
      header({ name: 'PaxHeader/x', flag: 'x', size: pax.length }),
      Buffer.concat([pax], paddedSize(pax.length)),
      header({ name: 'x', size: 0 }), // the PAX size (5) wins over the header's 0
      Buffer.concat([Buffer.from('hello')], BLOCK),
      Buffer.alloc(2 * BLOCK),
    ];
    const path = join(dir, 'gnu.tar');
    await writeFile(path, Buffer.concat(blocks));
    const entries = await indexTarFile(path);
    assert.deepEqual(
      entries.map((e) => [e.name, e.size]),
      [
        [longName, 3],
        ['x', 5],
      ],
    );
    assert.equal(entries[1]!.offset, 7 * BLOCK);
  });

  test('an archive without end-of-archive blocks is accepted; one cut inside an entry is not', async () => {
    const archive = await makeTar([{ name: 'a.txt', content: 'a'.repeat(1000) }]);
    const noEnd = archive.subarray(0, BLOCK + paddedSize(1000));
    await writeFile(join(dir, 'noend.tar'), noEnd);
    assert.deepEqual(
      (await indexTarFile(join(dir, 'noend.tar'))).map((e) => e.name),
      ['a.txt'],
    );
    await writeFile(join(dir, 'cut.tar'), archive.subarray(0, BLOCK + 500));
    await assert.rejects(
      indexTarFile(join(dir, 'cut.tar')),
      (e: unknown) => e instanceof TarTruncatedError && /truncated/.test((e as Error).message),
    );
    await writeFile(join(dir, 'cut-header.tar'), Buffer.concat([noEnd, Buffer.alloc(100, 1)]));
    await assert.rejects(indexTarFile(join(dir, 'cut-header.tar')), TarTruncatedError);
  });

  test('a PAX header with no entry after it is a truncated archive', async () => {
    const paxBody = ' path=x\n';
    const pax = Buffer.from(`${paxBody.length + 1}${paxBody}`);
    const path = join(dir, 'pax-only.tar');
    await writeFile(path, Buffer.concat([header({ name: 'PaxHeader/x', flag: 'x', size: pax.length }), Buffer.concat([pax], BLOCK)]));
    await assert.rejects(indexTarFile(path), TarTruncatedError);
  });

  test('a bad header in the middle names its position', async () => {
    const archive = Buffer.from(
      await makeTar([
        { name: 'a.txt', content: 'a' },
        { name: 'b.txt', content: 'b' },
      ]),
    );
    archive[2 * BLOCK + 1] ^= 0x01;
    const path = join(dir, 'bad.tar');
    await writeFile(path, archive);
    await assert.rejects(
      indexTarFile(path),
      (e: unknown) => e instanceof TarFormatError && /checksum.*byte 1024/.test((e as Error).message),
    );
  });
});
