/**
 * Where the bench's CNN tasks spend their time on one backend, kernel by kernel:
 *   node dist/bench/tools/profile-tasks.js [--backend=wasm] [--task=train|evaluate|grad|grad1]
 *     [--repeats=N] [--top=N] [--clock=cpu|wall]
 * Wraps every kernel registered for the backend with a timer (kernels run synchronously on
 * wasm and cpu) and prints, per kernel name and input shapes, the calls and the exclusive
 * milliseconds per task run (time inside nested kernel calls is counted with the inner kernel),
 * beside the task's time. The default clock is this process's CPU time, which a busy machine
 * disturbs far less than wall time (wasm runs on one thread).
 */
import * as tf from '@tensorflow/tfjs';
import { BackendId, initBackend } from '../../src/kernels/backend';
import { smallCnn } from '../../src/models/small-cnn';
import { disposeSets, loadBenchDigits } from '../cnn/data';
import { compileForBench, evaluate, inputGradientSign, trainEpoch } from '../cnn/tasks';
import { intArg, parseArgs } from '../lib/bench';
import { markdownTable } from '../lib/table';

interface Entry {
  calls: number;
  ms: number;
}

/** Wraps every kernel of `backendName` with a timer; returns the table and an undo function. */
function instrument(
  backendName: string,
  now: () => number,
): { table: Map<string, Entry>; undo: () => void } {
  const table = new Map<string, Entry>();
  const kernels = tf.getKernelsForBackend(backendName);
  const childMs: number[] = [];
  for (const k of kernels) {
    const inner = k.kernelFunc;
    const timed: tf.KernelFunc = (params) => {
      childMs.push(0);
      const start = now();
      const out = inner(params);
      const ms = now() - start;
      const children = childMs.pop() as number;
      if (childMs.length > 0) childMs[childMs.length - 1] += ms;
      const shapes = Object.values(params.inputs).map((t) => (t ? t.shape : []));
      const key = `${k.kernelName} ${JSON.stringify(shapes)}`;
      const entry = table.get(key) ?? { calls: 0, ms: 0 };
      entry.calls += 1;
      entry.ms += ms - children;
      table.set(key, entry);
      return out;
    };
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({ ...k, kernelFunc: timed });
  }
  return {
    table,
    undo: () => {
      for (const k of kernels) {
        tf.unregisterKernel(k.kernelName, backendName);
        tf.registerKernel(k);
      }
    },
  };
}

/** Milliseconds of CPU time this process has used (user + system). */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e3;
}

function wallMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['backend', 'task', 'repeats', 'top', 'clock']);
  const clock = args.get('clock') ?? 'cpu';
  if (clock !== 'cpu' && clock !== 'wall') throw new Error('--clock: cpu or wall');
  const now = clock === 'cpu' ? cpuMs : wallMs;
  const backend = (args.get('backend') ?? 'wasm') as BackendId;
  const task = args.get('task') ?? 'train';
  const repeats = intArg(args, 'repeats', 3);
  await initBackend({ backend, log: () => undefined });
  const digits = loadBenchDigits(2000, 1000);
  const model = smallCnn({ seed: 0 });
  compileForBench(model);
  const runs: Record<string, () => Promise<unknown>> = {
    train: () => trainEpoch(model, digits.train, 100),
    evaluate: () => evaluate(model, digits.eval, 100),
    grad: () => inputGradientSign(model, digits.eval, 100),
    grad1: () => inputGradientSign(model, digits.eval, 1000),
  };
  const run = runs[task];
  if (!run) throw new Error(`--task: one of ${Object.keys(runs).join(', ')}`);
  await run();
  const { table, undo } = instrument(tf.getBackend(), now);
  await run(); // warm the instrumented kernels
  table.clear();
  const start = now();
  for (let i = 0; i < repeats; i++) await run();
  const perRun = (now() - start) / repeats;
  undo();
  const rows = [...table.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([key, v]) => [key.slice(0, 100), v.calls / repeats, v.ms / repeats]);
  const total = [...table.values()].reduce((s, v) => s + v.ms, 0) / repeats;
  console.log(
    markdownTable(
      ['kernel [input shapes]', 'calls/run', 'ms/run'],
      rows.slice(0, intArg(args, 'top', 30)),
    ),
  );
  console.log(
    `\n${task} on ${tf.getBackend()}: ${perRun.toFixed(1)} ms per run (${clock}), ` +
      `${total.toFixed(1)} ms inside kernels`,
  );
  model.optimizer?.dispose();
  model.dispose();
  disposeSets(digits.train, digits.eval);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
