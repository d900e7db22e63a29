import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { projectRoot } from './python';

/** The machine a result was measured on. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
}

/** What `os` says about this machine. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/**
 * Writes a bench's result as `bench-results/<name>.json` under the project root (with the
 * machine and the date), so that numbers quoted elsewhere can be checked. Returns the path.
 */
export function writeResult(name: string, result: unknown): string {
  const dir = path.join(projectRoot(), 'bench-results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const record = { bench: name, date: new Date().toISOString(), machine: machineInfo(), result };
  fs.writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file;
}
