// Preloaded (`node --import`) into the gateway when the bench runs with --cpu-prof, instead of
// the loop monitor. The V8 CPU profiler (the one `node --cpu-prof` uses) runs only between two
// SIGUSR2 signals — the measured window — and each window is written to BENCH_CPU_PROFILE_DIR.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let sequence = 0;
  const post = (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  process.on('SIGUSR2', () => {
    if (!running) {
      running = true;
      void post('Profiler.enable')
        .then(() => post('Profiler.setSamplingInterval', { interval: 250 }))
        .then(() => post('Profiler.start'));
      return;
    }
    running = false;
    void post('Profiler.stop').then(({ profile }) => {
      const file = join(dir, `window-${++sequence}.cpuprofile`);
      writeFileSync(`${file}.tmp`, JSON.stringify(profile));
      renameSync(`${file}.tmp`, file);
    });
  });
}
