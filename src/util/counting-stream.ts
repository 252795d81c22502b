import { Transform } from 'node:stream';

/** Passes bytes through unchanged, telling `counted` how many each chunk held (progress, sizes). */
export function countingStream(counted: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      counted(chunk.length);
      callback(null, chunk);
    },
  });
}
