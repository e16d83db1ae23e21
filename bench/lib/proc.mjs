// Child processes of the bench: started pinned to a CPU with taskset, watched through /proc.
import { spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const PAGE_SIZE = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout.trim()) || 4096;

/** The CPU layout: the server under test on one CPU, the load generator and the upstream on another. */
export function cpuPlan() {
  const hasTaskset = spawnSync('taskset', ['--version']).status === 0;
  const online = readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
  const cpus = [];
  for (const range of online.split(',')) {
    const [from, to = from] = range.split('-').map(Number);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  if (!hasTaskset || cpus.length < 2) return { pinned: false, server: undefined, load: undefined, cpus: cpus.length, note: hasTaskset ? 'one CPU: nothing pinned' : 'taskset missing: nothing pinned' };
  // The last two CPUs: on a larger machine the rest stay free for the system.
  return { pinned: true, server: cpus.at(-1), load: cpus.at(-2), cpus: cpus.length, note: `server on CPU ${cpus.at(-1)}, load generator and upstream on CPU ${cpus.at(-2)}` };
}

/** Pins this very process (all its threads) to a CPU. */
export function pinSelf(cpu) {
  if (cpu === undefined) return;
  spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** Every child still running, so that no server outlives the bench, whatever happens. */
const children = new Set();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Stops every child the bench started that is still running. */
export function stopAllProcesses() {
  return Promise.all([...children].map((child) => child.handle.stop().catch(() => undefined)));
}

/**
 * Spawns `command args` on `cpu` (via taskset, so every thread it ever starts inherits the pin).
 * stdout goes to `stdoutFile` when given (the gateway's log), else it is kept for the ready line.
 */
export function startProcess(name, command, args, { cpu, cwd, env, stdoutFile, stderrFile } = {}) {
  const argv = cpu === undefined ? [command, ...args] : ['taskset', '-c', String(cpu), command, ...args];
  const stdout = stdoutFile ? openSync(stdoutFile, 'a') : 'pipe';
  const stderr = stderrFile ? openSync(stderrFile, 'a') : 'pipe';
  const child = spawn(argv[0], argv.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ['ignore', stdout, stderr] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text) => (output = (output + text).slice(-64 * 1024)));
  child.stderr?.setEncoding('utf8').on('data', (text) => (output = (output + text).slice(-64 * 1024)));
  children.add(child);
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const handle = {
    name,
    child,
    pid: child.pid,
    exited,
    output: () => output,
    /** The first JSON line with `ready: true` on stdout (our own servers print one). */
    async readyLine(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        for (const line of output.split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const parsed = JSON.parse(line);
            if (parsed.ready) return parsed;
          } catch {
            // a partial line; wait for the rest
          }
        }
        if (child.exitCode !== null) break;
        await sleep(20);
      }
      throw new Error(`${name} did not start: ${output.trim().slice(-2000) || `exit ${child.exitCode}`}`);
    },
    async stop(signal = 'SIGTERM', graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = sleep(graceMs).then(() => 'timeout');
      if ((await Promise.race([exited, timer])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  child.handle = handle;
  return handle;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port, { timeoutMs = 30_000, process: owner } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (owner && owner.child.exitCode !== null) throw new Error(`${owner.name} exited (${owner.child.exitCode}): ${owner.output().trim().slice(-2000)}`);
    const open = await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms${owner ? `: ${owner.output().trim().slice(-2000)}` : ''}`);
}

/** A free loopback port (bound and released; good enough on a machine the bench has to itself). */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Every pid of a process tree (nginx: master and worker), from the parent ids in /proc. */
export function processTree(rootPid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  const pids = [rootPid];
  for (let index = 0; index < pids.length; index++) pids.push(...(children.get(pids[index]) ?? []));
  return pids;
}

/** utime + stime of the processes, in milliseconds (all threads: GC and libuv workers count). */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start at field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended
    }
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Resident set size of the processes, bytes. */
export function rssBytes(pids) {
  let pages = 0;
  for (const pid of pids) {
    try {
      pages += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // the process ended
    }
  }
  return pages * PAGE_SIZE;
}

/** Moves running processes (every thread) to another CPU. */
export function repin(pids, cpu) {
  if (cpu === undefined) return;
  for (const pid of pids) spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Busy and steal time of the whole machine so far, in milliseconds (from /proc/stat). */
export function machineCpuMs() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest time is already in user)
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return { busy: ((user + nice + system + irq + softirq) * 1000) / CLOCK_TICKS, steal: ((steal ?? 0) * 1000) / CLOCK_TICKS };
}
