/**
 * The hashing thread's code (util/hash-worker.ts runs it). It is inline, so it needs no file of
 * its own beside the module (a bundled single executable has none); it takes Node's modules
 * with process.getBuiltinModule, which works however the thread evaluates it (a worker inherits
 * the process's `--input-type=module`, and then has no `require`). File ranges are hashed a
 * slice at a time through one reused buffer, so that streams sharing the thread never wait long;
 * a range may also be copied into another file as it is hashed (the output opened by path, so
 * that closing the caller's handle can never leave this thread writing to a reused descriptor).
 */
export const WORKER_CODE = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { openSync, readSync, writeSync, closeSync } = process.getBuiltinModule('node:fs');
const { createHash } = process.getBuiltinModule('node:crypto');
const jobs = new Map();
const done = (id, job) => {
  jobs.delete(id);
  parentPort.postMessage({ id, digest: 'sha256:' + job.hash.digest('hex'), size: job.size });
};
const fail = (id, error) => {
  jobs.delete(id);
  parentPort.postMessage({ id, error: String(error && error.message || error), code: error && error.code });
};
const closeFiles = (job) => {
  for (const fd of [job.fd, job.out]) if (fd !== undefined) try { closeSync(fd); } catch {}
};
function fileSlice(id, job) {
  try {
    if (jobs.get(id) !== job) return closeFiles(job);
    const n = job.size < job.length ? readSync(job.fd, job.buffer, 0, Math.min(job.buffer.length, job.length - job.size), job.offset + job.size) : 0;
    if (n > 0) {
      job.hash.update(job.buffer.subarray(0, n));
      for (let w = 0; job.out !== undefined && w < n; ) {
        const k = writeSync(job.out, job.buffer, w, n - w, job.position + job.size + w);
        if (k === 0) throw new Error('the output file took no bytes');
        w += k;
      }
      job.size += n;
      return setImmediate(fileSlice, id, job);
    }
    closeFiles(job);
    done(id, job);
  } catch (error) {
    closeFiles(job);
    fail(id, error);
  }
}
parentPort.on('message', (m) => {
  if (m.file) {
    const job = { hash: createHash('sha256'), size: 0, offset: m.file.offset, length: m.file.length, buffer: Buffer.allocUnsafe(1 << 20) };
    try {
      job.fd = openSync(m.file.path, 'r');
      if (m.to) {
        job.out = openSync(m.to.path, 'r+');
        job.position = m.to.position;
      }
    } catch (error) {
      closeFiles(job);
      return fail(m.id, error);
    }
    jobs.set(m.id, job);
    return fileSlice(m.id, job);
  }
  if (m.shared) return jobs.set(m.id, { hash: createHash('sha256'), size: 0, shared: m.shared });
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.drop) return jobs.delete(m.id);
  if (m.end) return done(m.id, job);
  job.hash.update(new Uint8Array(job.shared, m.slot * m.slotSize, m.length));
  job.size += m.length;
  parentPort.postMessage({ id: m.id, slot: m.slot });
});
`;
