import * as fs from 'fs';
import * as path from 'path';
import { setOurOpsRegistered } from './our-ops';

/**
 * Loads our TensorFlow ops module (`antifragile_kernels.node`, built by `npm run setup` from
 * ./addon/ beside tfjs-node's addon and linked to its TensorFlow): loading it registers the ops
 * with TensorFlow. Node only; called once the `tensorflow` backend is in use. A missing module
 * (no compiler at setup) or `TFJS_ANTIFRAGILE_NO_OPS=1` leaves TensorFlow's own ops in use.
 * Returns whether the ops are registered.
 */
export function loadNativeOps(): boolean {
  const file = process.env.TFJS_ANTIFRAGILE_NO_OPS === '1' ? undefined : modulePath();
  let registered = false;
  if (file) {
    try {
      // A native module found at run time: no static import.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const ops = require(file) as { registrationError?: string };
      registered = !ops.registrationError;
    } catch {
      registered = false;
    }
  }
  setOurOpsRegistered(registered);
  return registered;
}

function modulePath(): string | undefined {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return undefined;
  }
  const lib = path.join(dir, 'lib');
  if (!fs.existsSync(lib)) return undefined;
  for (const sub of fs.readdirSync(lib)) {
    const candidate = path.join(lib, sub, 'antifragile_kernels.node');
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}
