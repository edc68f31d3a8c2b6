// How the Node bench scripts time a repeated piece of work: wall time and
// this process's CPU time (user + system, all its threads) per repetition.

/** Runs `work` `reps` times; returns its last result and `[{ wallMs, cpuMs }]`. */
export async function repeat(reps, work) {
  const runs = [];
  let result;
  for (let r = 0; r < reps; r++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    result = await work();
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    runs.push({ wallMs, cpuMs: (used.user + used.system) / 1000 });
  }
  return { result, runs };
}
