// Preloaded into a spawned gateway by the memory tests (NODE_OPTIONS="--expose-gc --import <this file>"):
// on SIGUSR2 it runs a full garbage collection and prints the process's memory use as one line on
// stderr, so a test can tell memory still in use from garbage the collector has not reclaimed yet.
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  process.stderr.write(`gc-probe ${JSON.stringify(process.memoryUsage())}\n`);
});
