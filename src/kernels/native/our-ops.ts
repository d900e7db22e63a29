import * as tf from '@tensorflow/tfjs';

/**
 * Whether our own TensorFlow ops (./addon/conv_pool.cc: the conv-pool block, the input gradient
 * into few channels) can run: the `tensorflow` backend is active, its ops module registered
 * them (./ops-module.ts, at `initBackend()`), and {@link enableOurOps} did not switch them off.
 * Browser-safe: no Node module is imported here.
 */

let registered = false;
let enabled = true;

/** Records whether the ops module registered our ops (./ops-module.ts). */
export function setOurOpsRegistered(value: boolean): void {
  registered = value;
}

/**
 * Switches our ops off (false) and on again, for comparisons with TensorFlow's own: the values
 * are the same either way (tests check it); only the time differs.
 */
export function enableOurOps(on: boolean): void {
  enabled = on;
}

/** Whether our ops run now (see the module's comment). */
export function ourOpsAvailable(): boolean {
  return enabled && registered && tf.getBackend() === 'tensorflow';
}
