/**
 * Starts a process on ports found free, again on fresh ones when it lost a port to another
 * process between the check and its bind (up to 3 tries). `clashed` tells that failure from
 * others, which are thrown at once.
 */
export async function retryOnPortClash<T>(start: () => Promise<T>, clashed = (err: unknown) => String(err).includes('EADDRINUSE')): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !clashed(err)) throw err;
    }
  }
}
