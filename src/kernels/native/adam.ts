import * as tf from '@tensorflow/tfjs';
import type { NativeBackend } from './native-backend';
import {
  ensureMoments,
  finishAdamStep,
  float32Updatable,
  gradientList,
  type AdamFields,
  type Gradients,
} from '../optimizers/adam-internals';

/** TensorFlow resource variables mirroring one trained variable, its `m` and its `v`. */
interface Slot {
  /** Binding-level tensor ids of the resource handles (not tfjs tensors: not in tf.memory()). */
  handles: [number, number, number];
  /**
   * Per handle, the dataId of the tfjs variable when the resource last took or gave its value:
   * a different dataId means the variable was assigned from outside and the resource must take
   * it again.
   */
  held: [object | undefined, object | undefined, object | undefined];
  /**
   * The tfjs `m` and `v` variables whose values the resources hold newer versions of (the
   * moments are read back only when someone needs them: {@link syncMoments}); undefined when
   * the tfjs variables are up to date.
   */
  stale?: [tf.Variable, tf.Variable];
}

/**
 * Small variables updated together: one flat TensorFlow resource each for their weights, `m`
 * and `v` (the members' values concatenated, flattened, in member order), so that one
 * `ResourceApplyAdam` serves them all (a per-call cost of ~70 µs dominates small variables:
 * ShuffleNet V2 has 170 variables, 113 of them BatchNorm γ and β).
 */
interface Group {
  /** The members' variable indices, in order; and their element counts. */
  indices: number[];
  sizes: number[];
  handles: [number, number, number];
  /** Per resource (weight, `m`, `v`), per member: the dataId the resource last took or gave. */
  held: (object | undefined)[][];
  /** The members' tfjs `m` and `v` variables, when the resources hold newer values. */
  stale?: [tf.Variable[], tf.Variable[]];
}

/** Variables of at most this many elements are updated in one {@link Group}. */
const GROUP_MAX_SIZE = 4096;

/** Per optimizer: its slots by variable index, and their cleanup registration. */
interface OptimizerState {
  slots: Map<number, Slot>;
  /** The small variables' shared resources (undefined until two of them train). */
  group?: Group;
  /**
   * Binding-level tensors to free with the optimizer: `handles` (resources, destroyed) and
   * `scalars` (learning rate, β1, β2 by value); shared with the finalizer, which must not
   * reference the optimizer.
   */
  owned: { handles: number[]; scalars: Map<string, number> };
}

const BACKEND = 'tensorflow';
const states = new WeakMap<object, OptimizerState>();
/** The optimizers that have native state, for {@link unregisterNativeAdam} to synchronise. */
const withState = new Set<WeakRef<tf.AdamOptimizer>>();
let nextResource = 0;
/**
 * Resource names must be unique in the process, and this module may be loaded more than once in
 * it (two copies of the library, or test files with their own module registries): a counter alone
 * would let one copy's cleanup destroy another copy's live variable of the same name.
 */
// Web Crypto (a global in browsers and Node ≥ 19): this file is in the browser build's graph.
const INSTANCE = globalThis.crypto.randomUUID();
interface AdamMethods {
  applyGradients(this: tf.AdamOptimizer, gradients: Gradients): void;
  dispose(this: tf.AdamOptimizer): void;
  getWeights(this: tf.AdamOptimizer): Promise<{ name: string; tensor: tf.Tensor }[]>;
}

let stock: AdamMethods | undefined;

function freeOwned(owned: OptimizerState['owned']): void {
  const backend = tf.findBackend(BACKEND) as unknown as NativeBackend | null;
  if (backend) {
    const { binding } = backend;
    const attrs = [{ name: 'ignore_lookup_error', type: binding.TF_ATTR_BOOL, value: true }];
    for (const id of owned.handles) {
      binding.executeOp('DestroyResourceOp', attrs, [id], 0);
      binding.deleteTensor(id);
    }
    for (const id of owned.scalars.values()) binding.deleteTensor(id);
  }
  owned.handles.length = 0;
  owned.scalars.clear();
}

/** Frees the TensorFlow resources of optimizers collected without `dispose()`. */
const finalizer = new FinalizationRegistry<OptimizerState['owned']>((owned) => {
  try {
    freeOwned(owned);
  } catch {
    /* the backend is gone: nothing left to free */
  }
});

function stateOf(optimizer: tf.AdamOptimizer): OptimizerState {
  let state = states.get(optimizer);
  if (!state) {
    state = { slots: new Map(), owned: { handles: [], scalars: new Map() } };
    states.set(optimizer, state);
    withState.add(new WeakRef(optimizer));
    finalizer.register(optimizer, state.owned, optimizer);
  }
  return state;
}

function newHandle(backend: NativeBackend, shape: number[]): number {
  const { binding } = backend;
  nextResource += 1;
  const [handle] = binding.executeOp(
    'VarHandleOp',
    [
      { name: 'container', type: binding.TF_ATTR_STRING, value: '' },
      {
        name: 'shared_name',
        type: binding.TF_ATTR_STRING,
        value: `tfjs_antifragile_adam_${INSTANCE}_${nextResource}`,
      },
      { name: 'dtype', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
      { name: 'shape', type: binding.TF_ATTR_SHAPE, value: shape },
    ],
    [],
    1,
  );
  return handle.id;
}

/** A float32 scalar as a binding-level tensor, cached per optimizer and key (one value each). */
function cachedScalar(
  backend: NativeBackend,
  state: OptimizerState,
  key: string,
  value: number,
): number {
  const { scalars } = state.owned;
  const name = `${key}=${value}`;
  let id = scalars.get(name);
  if (id === undefined) {
    for (const [k, old] of scalars) {
      if (k.startsWith(`${key}=`)) {
        backend.binding.deleteTensor(old);
        scalars.delete(k);
      }
    }
    id = backend.binding.createTensor([], backend.binding.TF_FLOAT, new Float32Array([value]));
    scalars.set(name, id);
  }
  return id;
}

/**
 * tfjs' `AdamOptimizer.applyGradients` on the native backend as one TensorFlow
 * `ResourceApplyAdam` per variable (one fused pass over weight, `m`, `v` and gradient) instead
 * of fourteen element-wise tfjs ops. The weight, `m` and `v` stay tfjs variables (so
 * `getWeights`, `setWeights`, saving and other backends see the usual state); TensorFlow
 * resource variables mirror them. The weight is read back after every step (sharing the
 * resource's buffer); the moments only when needed ({@link syncMoments}), so TensorFlow
 * updates them in place. The cost: the tfjs `m` and `v` hold stale buffers meanwhile (twice
 * the parameters' memory on top of the resources').
 *
 * Same arithmetic as tfjs to float32 rounding: tfjs computes
 * `w − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)`, TensorFlow `w − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m/(√v + ε′)`,
 * equal when `ε′ = ε·√(1−β2ᵗ)`, which is what is passed.
 */
function nativeApply(optimizer: tf.AdamOptimizer, gradients: Gradients): boolean {
  if (!float32Updatable(gradients)) return false;
  const { names, gradientOf } = gradientList(gradients);
  const registered = tf.engine().registeredVariables;
  const f = optimizer as unknown as AdamFields;
  const backend = tf.backend() as unknown as NativeBackend;
  const { binding } = backend;
  const state = stateOf(optimizer);
  const float = { name: 'dtype', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT };
  const assignAttrs = [float, { name: 'validate_shape', type: binding.TF_ATTR_BOOL, value: false }];
  const applyAttrs = [
    { name: 'T', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT },
    { name: 'use_locking', type: binding.TF_ATTR_BOOL, value: false },
    { name: 'use_nesterov', type: binding.TF_ATTR_BOOL, value: false },
  ];
  const lr = cachedScalar(backend, state, 'lr', f.learningRate);
  const beta1 = cachedScalar(backend, state, 'beta1', f.beta1);
  const beta2 = cachedScalar(backend, state, 'beta2', f.beta2);
  const ids = (...ts: tf.Tensor[]) => backend.getInputTensorIds(ts);
  // The small variables with a gradient share one update (two or more of them).
  const members: number[] = [];
  names.forEach((name, i) => {
    if (gradientOf(name, i) != null && registered[name].size <= GROUP_MAX_SIZE) members.push(i);
  });
  if (members.length < 2) members.length = 0;
  const grouped = new Set(members);
  if (state.group && !tf.util.arraysEqual(state.group.indices, members)) {
    // Other members (a layer frozen or unfrozen): hand the moments back, start a new group.
    syncMoments(optimizer);
    dropGroup(backend, state);
  }
  tf.tidy(() => {
    const epsilon = tf.mul(tf.sqrt(tf.sub(1, f.accBeta2)), f.epsilon);
    names.forEach((name, i) => {
      const value = registered[name];
      // As tfjs: the moments are created at the first step, even for a null gradient.
      ensureMoments(f, name, i, value);
      const gradient = gradientOf(name, i);
      if (gradient == null || grouped.has(i)) return;
      const vars = [
        value,
        f.accumulatedFirstMoment[i].variable,
        f.accumulatedSecondMoment[i].variable,
      ] as const;
      let slot = state.slots.get(i);
      if (!slot) {
        const handles = vars.map(() => newHandle(backend, value.shape)) as Slot['handles'];
        state.owned.handles.push(...handles);
        slot = { handles, held: [undefined, undefined, undefined] };
        state.slots.set(i, slot);
      }
      for (let k = 0; k < 3; k++) {
        // The resource already holds this buffer unless someone assigned the variable since.
        if (slot.held[k] !== vars[k].dataId) {
          binding.executeOp('AssignVariableOp', assignAttrs, [slot.handles[k], ...ids(vars[k])], 0);
        }
      }
      binding.executeOp(
        'ResourceApplyAdam',
        applyAttrs,
        [
          ...slot.handles,
          ...ids(f.accBeta1, f.accBeta2),
          lr,
          beta1,
          beta2,
          ...ids(epsilon, gradient),
        ],
        0,
      );
      // The weight goes back to tfjs now; the moments stay in the resources (updated in place,
      // no copy) until someone reads them.
      const [read] = binding.executeOp('ReadVariableOp', [float], [slot.handles[0]], 1);
      value.assign(backend.createOutputTensor(read));
      slot.held = [value.dataId, vars[1].dataId, vars[2].dataId];
      slot.stale = [vars[1], vars[2]];
    });
    if (members.length > 0) {
      // A member's own slot may hold newer moments (it trained alone before): hand them over.
      if (members.some((i) => state.slots.get(i)?.stale)) syncMoments(optimizer);
      const values = members.map((i) => registered[names[i]]);
      const moments = [
        members.map((i) => f.accumulatedFirstMoment[i].variable),
        members.map((i) => f.accumulatedSecondMoment[i].variable),
      ];
      if (!state.group) {
        const total = values.reduce((sum, v) => sum + v.size, 0);
        const handles = [0, 1, 2].map(() => newHandle(backend, [total])) as Group['handles'];
        state.owned.handles.push(...handles);
        state.group = {
          indices: [...members],
          sizes: values.map((v) => v.size),
          handles,
          held: [[], [], []],
        };
      }
      const group = state.group;
      const flat = (ts: tf.Tensor[]) =>
        tf.concat(ts.map((t) => (t.rank === 1 ? t : tf.reshape(t, [-1]))));
      [values, ...moments].forEach((vars, k) => {
        // The resource already holds these buffers unless someone assigned a member since.
        if (vars.every((v, j) => group.held[k][j] === v.dataId)) return;
        binding.executeOp(
          'AssignVariableOp',
          assignAttrs,
          [group.handles[k], ...ids(flat(vars))],
          0,
        );
      });
      // Members all have a gradient (see above).
      const gradient = flat(members.map((i) => gradientOf(names[i], i) as tf.Tensor));
      binding.executeOp(
        'ResourceApplyAdam',
        applyAttrs,
        [
          ...group.handles,
          ...ids(f.accBeta1, f.accBeta2),
          lr,
          beta1,
          beta2,
          ...ids(epsilon, gradient),
        ],
        0,
      );
      const [read] = binding.executeOp('ReadVariableOp', [float], [group.handles[0]], 1);
      const parts = tf.split(backend.createOutputTensor(read), group.sizes);
      values.forEach((value, j) => {
        value.assign(value.rank === 1 ? parts[j] : tf.reshape(parts[j], value.shape));
      });
      group.held = [values.map((v) => v.dataId), ...moments.map((vs) => vs.map((v) => v.dataId))];
      group.stale = moments as [tf.Variable[], tf.Variable[]];
    }
  });
  finishAdamStep(f);
  return true;
}

/** Destroys an optimizer's group resources (their moments must have been handed back). */
function dropGroup(backend: NativeBackend, state: OptimizerState): void {
  const group = state.group;
  if (!group) return;
  const { binding } = backend;
  const attrs = [{ name: 'ignore_lookup_error', type: binding.TF_ATTR_BOOL, value: true }];
  for (const id of group.handles) {
    binding.executeOp('DestroyResourceOp', attrs, [id], 0);
    binding.deleteTensor(id);
    state.owned.handles.splice(state.owned.handles.indexOf(id), 1);
  }
  state.group = undefined;
}

/**
 * Copies an optimizer's moments from its TensorFlow resources into its tfjs `m` and `v`
 * variables (through JavaScript arrays, so whichever backend is active gets them). Runs before
 * anything reads them: `getWeights`, a step on another backend, releasing the resources.
 */
export function syncMoments(optimizer: tf.AdamOptimizer): void {
  const state = states.get(optimizer);
  const backend = tf.findBackend(BACKEND) as unknown as NativeBackend | null;
  if (!state || !backend) return;
  const f = optimizer as unknown as AdamFields;
  const { binding } = backend;
  const float = { name: 'dtype', type: binding.TF_ATTR_TYPE, value: binding.TF_FLOAT };
  const group = state.group;
  if (group?.stale) {
    const stale = group.stale;
    group.stale = undefined;
    const current = [f.accumulatedFirstMoment, f.accumulatedSecondMoment];
    stale.forEach((variables, k) => {
      const [out] = binding.executeOp('ReadVariableOp', [float], [group.handles[k + 1]], 1);
      const values = binding.tensorDataSync(out.id);
      binding.deleteTensor(out.id);
      let offset = 0;
      variables.forEach((variable, j) => {
        const size = group.sizes[j];
        const start = offset;
        offset += size;
        // Replaced since (setWeights) or disposed: the resource's value is not theirs any more.
        if (variable !== current[k][group.indices[j]]?.variable || variable.isDisposed) return;
        const part = values.subarray(start, start + size);
        tf.tidy(() => variable.assign(tf.tensor(part, variable.shape, 'float32')));
        group.held[k + 1][j] = variable.dataId;
      });
    });
  }
  for (const [i, slot] of state.slots) {
    if (!slot.stale) continue;
    const current = [f.accumulatedFirstMoment[i]?.variable, f.accumulatedSecondMoment[i]?.variable];
    slot.stale.forEach((variable, k) => {
      // Replaced since (setWeights) or disposed: the resource's value is not theirs any more.
      if (variable !== current[k] || variable.isDisposed) return;
      const [out] = binding.executeOp('ReadVariableOp', [float], [slot.handles[k + 1]], 1);
      const values = binding.tensorDataSync(out.id);
      binding.deleteTensor(out.id);
      tf.tidy(() => variable.assign(tf.tensor(values, variable.shape, 'float32')));
      slot.held[k + 1] = variable.dataId;
    });
    slot.stale = undefined;
  }
}

/** Whether {@link registerNativeAdam} is in effect. */
export function nativeAdamRegistered(): boolean {
  return stock !== undefined;
}

/**
 * Makes every tfjs `AdamOptimizer` (`tf.train.adam`, `compile({ optimizer: 'adam' })`) update
 * its variables with TensorFlow's fused `ResourceApplyAdam` while the active backend is the
 * native `tensorflow` one (see {@link nativeApply}); on other backends, and for non-float32
 * variables, tfjs' own code runs (after {@link syncMoments}). `getWeights` returns the current
 * moments. The optimizer's TensorFlow resources are freed by its `dispose()` (or when it is
 * garbage-collected). Idempotent.
 */
export function registerNativeAdam(): void {
  if (stock) return;
  const proto = tf.AdamOptimizer.prototype as unknown as AdamMethods;
  const original: AdamMethods = {
    applyGradients: proto.applyGradients,
    dispose: proto.dispose,
    getWeights: proto.getWeights,
  };
  stock = original;
  proto.applyGradients = function (this: tf.AdamOptimizer, gradients: Gradients) {
    if (tf.getBackend() === BACKEND && nativeApply(this, gradients)) return;
    syncMoments(this);
    original.applyGradients.call(this, gradients);
  };
  proto.dispose = function (this: tf.AdamOptimizer) {
    releaseNativeAdam(this, false);
    original.dispose.call(this);
  };
  proto.getWeights = function (this: tf.AdamOptimizer) {
    syncMoments(this);
    return original.getWeights.call(this);
  };
}

/**
 * Frees an optimizer's TensorFlow resources now, first copying its moments back into its tfjs
 * variables unless `keepMoments` is false; its next native step recreates them.
 */
export function releaseNativeAdam(optimizer: tf.AdamOptimizer, keepMoments = true): void {
  const state = states.get(optimizer);
  if (!state) return;
  if (keepMoments) syncMoments(optimizer);
  for (const ref of withState) if (ref.deref() === optimizer) withState.delete(ref);
  finalizer.unregister(optimizer);
  freeOwned(state.owned);
  states.delete(optimizer);
}

/** Restores tfjs' own `AdamOptimizer` code (for comparisons), moments synchronised first. */
export function unregisterNativeAdam(): void {
  if (!stock) return;
  for (const ref of withState) {
    const optimizer = ref.deref();
    if (optimizer) syncMoments(optimizer);
    else withState.delete(ref);
  }
  const proto = tf.AdamOptimizer.prototype as unknown as AdamMethods;
  proto.applyGradients = stock.applyGradients;
  proto.dispose = stock.dispose;
  proto.getWeights = stock.getWeights;
  stock = undefined;
}
