// boundExternalMemory: Buffers that survived into V8's old generation and then died are freed
// once external memory has grown by the bound again, not by V8's own ~64 MB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { boundExternalMemory } from '../../src/util/memory.js';

const MB = 1 << 20;
const external = (): number => v8.getHeapStatistics().external_memory;

/** 32 MiB of Buffers held across many young-generation collections (so promoted), then dropped. */
async function promotedGarbage(): Promise<void> {
  const held: Buffer[] = [];
  for (let i = 0; i < 32; i++) {
    held.push(Buffer.alloc(MB, i));
    // Small garbage between allocations: scavenges happen while the Buffers are held.
    for (let j = 0; j < 2000; j++) held.push(Buffer.from(`x${j}`).subarray(0, 0));
    await sleep(1);
  }
  held.length = 0;
}

test('dead promoted Buffers are freed after the next growth by the bound', async () => {
  const stop = boundExternalMemory(4 * MB);
  try {
    const before = external();
    await promotedGarbage();
    // A stream goes on: 12 MiB more, a MiB at a time, each dropped at once. V8 alone would wait
    // for ~64 MiB over its last collection (32 + 12 is not that), the bound for 4.
    for (let i = 0; i < 12; i++) {
      Buffer.alloc(MB);
      await sleep(15);
    }
    await sleep(100);
    const above = external() - before;
    assert.ok(above <= 16 * MB, `external memory is still ${(above / MB).toFixed(0)} MiB above where it started`);
  } finally {
    stop();
  }
});
