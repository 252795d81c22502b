// The hashing thread (util/hash-worker.ts): what it hashes is what createHash hashes, however
// Node evaluates the code around it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('the hashing thread works under --input-type=module, which a worker inherits (it once had no require there, and a stream hashing on it waited forever)', () => {
  const module = fileURLToPath(new URL('../../src/util/sha256-thread.js', import.meta.url));
  const code = `
    import { Sha256Thread } from ${JSON.stringify(module)};
    const hash = new Sha256Thread();
    const data = Buffer.alloc(3 << 20, 7);
    for (let at = 0; at < data.length; at += 100_000) await hash.update(data.subarray(at, at + 100_000));
    process.stdout.write((await hash.digest()).digest);
  `;
  const got = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(
    got,
    `sha256:${createHash('sha256')
      .update(Buffer.alloc(3 << 20, 7))
      .digest('hex')}`,
  );
});
