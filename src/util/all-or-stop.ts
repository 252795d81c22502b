/**
 * Waits for all of `work`; on the first failure calls `stop` (to cut the rest short), waits for
 * the rest to settle, and rethrows that failure: nothing started is still running afterwards.
 */
export async function allOrStop(work: Promise<unknown>[], stop: (error: Error) => void): Promise<void> {
  try {
    await Promise.all(work);
  } catch (error) {
    stop(error instanceof Error ? error : new Error(String(error)));
    await Promise.allSettled(work);
    throw error;
  }
}
