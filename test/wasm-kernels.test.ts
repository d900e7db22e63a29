/**
 * Kernel-level agreement of our wasm kernels with the `cpu` backend, table-driven: every kernel we
 * register or replace is run on `wasm` and on `cpu` with the same inputs and attributes.
 * Float32 results must agree to a relative error ≤ 1e-5 (max |wasm − cpu| / max |cpu|); pooling
 * gradients and tiles must be identical.
 */
import * as tf from '@tensorflow/tfjs';
import {
  checkTfjsVersion,
  registerWasmKernels,
  TfjsVersionError,
  WASM_KERNELS,
  wasmKernelsRegistered,
} from '../src/kernels/wasm';
import { sliceBlocks } from '../src/kernels/wasm/slice';
import { tileAsBroadcast } from '../src/kernels/wasm/tile';
import { directGradientStats, patchLimits } from '../src/kernels/wasm/conv-gradients';
import { swappedIsCheaper } from '../src/kernels/wasm/batch-mat-mul';
import { directConvLimits, directConvStats } from '../src/kernels/wasm/conv-forward';
import { simdKernels, simdPool, simdSettings } from '../src/kernels/wasm/simd';
import { wasmThreading } from '../src/kernels/wasm/threads';
import { RELU_GRAD_KERNEL, reluGradient } from '../src/kernels/gradients/relu';
import { seededRandom } from '../src/util/random';
import { switchToWasm } from './support/wasm';

type Shape = number[];
interface HostTensor {
  values: Float32Array | Int32Array | Uint8Array;
  shape: Shape;
  dtype: 'float32' | 'int32' | 'bool';
}
interface Result {
  shape: Shape;
  values: Float32Array | Int32Array | Uint8Array;
}

const TOLERANCE = 1e-5;
let previousBackend = '';

beforeAll(async () => {
  previousBackend = await switchToWasm();
});

afterAll(async () => {
  await tf.setBackend(previousBackend);
});

/** Deterministic values in [-1, 1) (a small LCG; seeds differ per tensor). */
function uniform(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function float(shape: Shape, seed: number): HostTensor {
  return {
    values: uniform(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
    dtype: 'float32',
  };
}

/** Seeded values of `shape` in `dtype`: floats in [−1, 1), ints in [−100, 100), or bools. */
function typed(shape: Shape, seed: number, dtype: 'float32' | 'int32' | 'bool'): HostTensor {
  const f = float(shape, seed);
  const values =
    dtype === 'float32'
      ? f.values
      : dtype === 'int32'
        ? Int32Array.from(f.values, (v) => Math.round(v * 100))
        : Uint8Array.from(f.values, (v) => (v > 0 ? 1 : 0));
  return { values, shape, dtype };
}

/** Runs one kernel on `backend` through the engine, as an op would. */
async function runKernel(
  backend: 'wasm' | 'cpu' | 'tensorflow',
  kernelName: string,
  inputs: Record<string, HostTensor>,
  attrs: tf.NamedAttrMap,
): Promise<Result> {
  await tf.setBackend(backend);
  const tensors: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(inputs))
    tensors[name] = tf.tensor(t.values, t.shape, t.dtype);
  const out = tf.engine().runKernel(kernelName, tensors, attrs) as tf.Tensor;
  const result = { shape: out.shape.slice(), values: out.dataSync() as Result['values'] };
  tf.dispose([out, ...Object.values(tensors)]);
  await tf.setBackend('wasm');
  return result;
}

function relativeError(actual: Result, expected: Result): number {
  expect(actual.shape).toEqual(expected.shape);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.values.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual.values[i] - expected.values[i]));
    maxRef = Math.max(maxRef, Math.abs(expected.values[i]));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

async function expectAgreement(
  kernelName: string,
  inputs: Record<string, HostTensor>,
  attrs: tf.NamedAttrMap,
  reference?: () => Promise<Result>,
): Promise<void> {
  const actual = await runKernel('wasm', kernelName, inputs, attrs);
  const expected = reference
    ? await reference()
    : await runKernel('cpu', kernelName, inputs, attrs);
  expect(relativeError(actual, expected)).toBeLessThanOrEqual(TOLERANCE);
}

/** Output size of a convolution/pool along one axis. */
function outSize(inSize: number, k: number, s: number, d: number, pad: 'same' | 'valid'): number {
  const eff = (k - 1) * d + 1;
  return pad === 'same' ? Math.ceil(inSize / s) : Math.ceil((inSize - eff + 1) / s);
}

describe('registration', () => {
  it('registers every listed kernel for wasm, idempotently', () => {
    registerWasmKernels();
    registerWasmKernels();
    expect(wasmKernelsRegistered()).toBe(true);
    for (const { kernelName } of WASM_KERNELS) {
      expect(tf.getKernel(kernelName, 'wasm')).toBeDefined();
    }
    expect(WASM_KERNELS.map((k) => k.kernelName).sort()).toEqual([
      'Add',
      'AntifragileAdam',
      'AntifragileReluGrad',
      'BatchMatMul',
      'Cast',
      'Conv2D',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'FusedConv2D',
      'GatherV2',
      'Identity',
      'MaxPool',
      'MaxPoolGrad',
      'Multiply',
      'RealDiv',
      'Sign',
      'Slice',
      'Sub',
      'Sum',
      'Tile',
    ]);
  });

  it('refuses another tfjs version with a clear error', () => {
    expect(() => checkTfjsVersion({ 'tfjs-core': '4.22.0', tfjs: '4.21.0' })).toThrow(
      TfjsVersionError,
    );
    expect(() => checkTfjsVersion({ 'tfjs-core': '4.23.0' })).toThrow(
      /written against tfjs 4\.22\.0, but tfjs-core 4\.23\.0 is loaded/,
    );
    expect(() => checkTfjsVersion()).not.toThrow();
  });
});

const KERNEL_SIZES = [1, 3, 5, 7];
const PADS: ('same' | 'valid')[] = ['same', 'valid'];

/** Conv2D cases: kernel size × stride × padding × batch (batch 100 at a tiny spatial size). */
const convCases = KERNEL_SIZES.flatMap((k) =>
  [1, 2].flatMap((s) =>
    PADS.flatMap((pad) => [
      { k, s, pad, batch: 1, h: 9, w: 10, inC: 3, outC: 4 },
      { k, s, pad, batch: 100, h: 8, w: 7, inC: 2, outC: 3 },
      // one input channel (a grey image): the input gradient's depthwise path
      { k, s, pad, batch: 3, h: 11, w: 9, inC: 1, outC: 16 },
      // an RGB first layer: the filter gradient's SIMD kernel (output channels a multiple of 8)
      { k, s, pad, batch: 5, h: 9, w: 8, inC: 3, outC: 8 },
      // channels a multiple of 4: patches by our SIMD kernel, then one product
      { k, s, pad, batch: 3, h: 9, w: 8, inC: 8, outC: 6 },
      // more input channels than the single-threaded direct kernel takes: the direct kernel on
      // the SIMD pool's threads (or, on one thread, XNNPACK's convolution)
      { k, s, pad, batch: 2, h: 9, w: 8, inC: patchLimits.maxInputChannels + 2, outC: 16 },
      // neither a multiple of 8 output channels nor of 4 input channels: XNNPACK's convolution
      { k, s, pad, batch: 2, h: 9, w: 8, inC: patchLimits.maxInputChannels + 2, outC: 5 },
      // more input channels than the pooled direct kernel takes: patches and one product
      { k, s, pad, batch: 2, h: 9, w: 8, inC: patchLimits.maxPooledInputChannels + 4, outC: 8 },
    ]),
  ),
);

describe('Conv2DBackpropFilter and Conv2DBackpropInput agree with cpu', () => {
  it.each(convCases)(
    'k=$k stride=$s $pad batch=$batch',
    async ({ k, s, pad, batch, h, w, inC, outC }) => {
      const oh = outSize(h, k, s, 1, pad);
      const ow = outSize(w, k, s, 1, pad);
      const x = float([batch, h, w, inC], 1);
      const dy = float([batch, oh, ow, outC], 2);
      const filter = float([k, k, inC, outC], 3);
      const common = { strides: [s, s], pad, dataFormat: 'NHWC' };
      await expectAgreement(
        'Conv2DBackpropFilter',
        { x, dy },
        { ...common, filterShape: [k, k, inC, outC] },
      );
      const before = directGradientStats.inputGradient;
      await expectAgreement(
        'Conv2DBackpropInput',
        { dy, filter },
        { ...common, inputShape: [batch, h, w, inC] },
      );
      // Stride 1, up to 4 input channels, output channels a multiple of 4: our SIMD kernel.
      const direct = s === 1 && inC <= 4 && outC % 4 === 0;
      expect(directGradientStats.inputGradient - before).toBe(direct ? 1 : 0);
    },
  );

  it.each([
    [1, 2],
    [2, 2],
    [1, 8],
    [2, 8],
  ])(
    'builds the filter gradient a batch slice at a time when the patches are large (stride %i, %i channels)',
    async (s, inC) => {
      const [batch, h, w, outC, k] = [7, 9, 8, 5, 3];
      const saved = patchLimits.maxValues;
      // 3·3·inC taps × 5·4 (stride 2) or 9·8 positions per image: 2 or 3 images per slice.
      patchLimits.maxValues = s === 1 ? 3 * 9 * inC * 72 : 2 * 9 * inC * 20;
      try {
        const oh = outSize(h, k, s, 1, 'same');
        const ow = outSize(w, k, s, 1, 'same');
        await expectAgreement(
          'Conv2DBackpropFilter',
          { x: float([batch, h, w, inC], 7), dy: float([batch, oh, ow, outC], 8) },
          { strides: [s, s], pad: 'same', dataFormat: 'NHWC', filterShape: [k, k, inC, outC] },
        );
      } finally {
        patchLimits.maxValues = saved;
      }
    },
  );

  it.each([
    [3, 16, 32, 1],
    [1, 16, 16, 1],
    [3, 6, 8, 2],
  ])(
    'the direct kernel gives the same values on the SIMD pool as on one thread (k=%i, %i→%i, stride %i)',
    (k, inC, outC, s) => {
      const pool = simdPool(tf.backend());
      expect(pool?.threads).toBe(
        (wasmThreading()?.threads ?? 1) > 1 ? wasmThreading()?.threads : undefined,
      );
      const x = tf.randomNormal([5, 13, 12, inC], 0, 1, 'float32', 1);
      const oh = outSize(13, k, s, 1, 'same');
      const ow = outSize(12, k, s, 1, 'same');
      const dy = tf.randomNormal([5, oh, ow, outC], 0, 1, 'float32', 2);
      const attrs = {
        strides: [s, s],
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [k, k, inC, outC],
      };
      const run = () => {
        const out = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
        const values = out.dataSync();
        out.dispose();
        return values;
      };
      const limits = { ...patchLimits };
      try {
        patchLimits.maxInputChannels = 64; // the direct kernel, pooled or not
        const pooled = run();
        simdSettings.pooled = false;
        const single = run();
        expect(Array.from(pooled)).toEqual(Array.from(single));
        expect(pooled.some((v) => v !== 0)).toBe(true);
      } finally {
        simdSettings.pooled = true;
        Object.assign(patchLimits, limits);
        tf.dispose([x, dy]);
      }
    },
  );

  it.each([1, 2])('handles NCHW (stride %i)', async (s) => {
    const [batch, h, w, inC, outC, k] = [2, 7, 6, 3, 2, 3];
    const oh = outSize(h, k, s, 1, 'same');
    const ow = outSize(w, k, s, 1, 'same');
    const x = float([batch, inC, h, w], 4);
    const dy = float([batch, outC, oh, ow], 5);
    const filter = float([k, k, inC, outC], 6);
    const common = { strides: [s, s], pad: 'same', dataFormat: 'NCHW' };
    await expectAgreement(
      'Conv2DBackpropFilter',
      { x, dy },
      { ...common, filterShape: [k, k, inC, outC] },
    );
    await expectAgreement(
      'Conv2DBackpropInput',
      { dy, filter },
      { ...common, inputShape: [batch, inC, h, w] },
    );
  });
});

/** Forward cases of our direct convolution: kernel × stride × padding × channels × batch. */
const forwardCases = KERNEL_SIZES.flatMap((k) =>
  [1, 2].flatMap((s) =>
    PADS.flatMap((pad) => [
      { k, s, pad, batch: 1, h: 9, w: 10, inC: 1, outC: 16 },
      { k, s, pad, batch: 100, h: 8, w: 7, inC: 3, outC: 8 },
      { k, s, pad, batch: 2, h: 11, w: 9, inC: 4, outC: 24 },
    ]),
  ),
);

describe('Conv2D and FusedConv2D agree with cpu', () => {
  it.each(forwardCases)(
    'k=$k stride=$s $pad batch=$batch $inC→$outC channels',
    async ({ k, s, pad, batch, h, w, inC, outC }) => {
      const x = float([batch, h, w, inC], 11);
      const filter = float([k, k, inC, outC], 12);
      const bias = float([outC], 13);
      const common = { strides: [s, s], pad, dataFormat: 'NHWC', dilations: [1, 1] };
      const before = directConvStats.calls;
      await expectAgreement('Conv2D', { x, filter }, common);
      for (const activation of ['linear', 'relu']) {
        await expectAgreement('FusedConv2D', { x, filter, bias }, { ...common, activation });
        await expectAgreement('FusedConv2D', { x, filter }, { ...common, activation });
      }
      expect(directConvStats.calls - before).toBe(5);
    },
  );

  it.each([
    ['five input channels', 5, 8, 1, 'linear'],
    ['output channels not a multiple of 8', 3, 12, 1, 'relu'],
    ['dilation', 2, 8, 2, 'linear'],
    ['another activation', 2, 8, 1, 'elu'],
  ])('leaves %s to wasm’s own kernel', async (_, inC, outC, d, activation) => {
    const x = float([2, 9, 9, inC], 14);
    const filter = float([3, 3, inC, outC], 15);
    const attrs = {
      strides: [1, 1],
      pad: 'same',
      dataFormat: 'NHWC',
      dilations: [d, d],
      activation,
    };
    const before = directConvStats.calls;
    await expectAgreement('FusedConv2D', { x, filter, bias: float([outC], 16) }, attrs);
    expect(directConvStats.calls).toBe(before);
  });

  it("gives exactly XNNPACK's values (bias first, then the taps in order)", () => {
    const x = tf.randomNormal([6, 14, 13, 2], 0, 1, 'float32', 3);
    const filter = tf.randomNormal([3, 3, 2, 16], 0, 1, 'float32', 4);
    const bias = tf.randomNormal([16], 0, 1, 'float32', 5);
    const attrs = {
      strides: [1, 1],
      pad: 'same',
      dataFormat: 'NHWC',
      dilations: [1, 1],
      activation: 'relu',
    };
    const run = () => {
      const out = tf.engine().runKernel('FusedConv2D', { x, filter, bias }, attrs) as tf.Tensor;
      const values = Array.from(out.dataSync());
      out.dispose();
      return values;
    };
    const before = directConvStats.calls;
    const ours = run();
    expect(directConvStats.calls).toBe(before + 1);
    directConvLimits.maxInputChannels = 0;
    try {
      expect(run()).toEqual(ours);
      expect(directConvStats.calls).toBe(before + 1);
    } finally {
      directConvLimits.maxInputChannels = 4;
      tf.dispose([x, filter, bias]);
    }
  });
});

/** Depthwise cases: kernel × (stride, dilation) × padding × multiplier × batch. */
const depthwiseCases = KERNEL_SIZES.flatMap((k) =>
  [
    [1, 1],
    [2, 1],
    [1, 2],
  ].flatMap(([s, d]) =>
    PADS.flatMap((pad) =>
      [1, 2].flatMap((mult) => [
        { k, s, d, pad, mult, batch: 1, h: 15, w: 14, c: 3 },
        { k, s, d, pad, mult, batch: 100, h: 8, w: 9, c: 2 },
      ]),
    ),
  ),
).filter(({ k, d, pad, h, w }) => pad === 'same' || (k - 1) * d + 1 <= Math.min(h, w));

/**
 * The `cpu` backend's depthwise gradient kernels ignore dilation (tfjs' gradients never pass one),
 * so a dilated case is checked against the undilated cpu kernel with the dilated filter written
 * out (zeros between taps) — the same convolution.
 */
function dilateFilter(filter: HostTensor, d: number): HostTensor {
  const [k, , c, m] = filter.shape;
  const ke = (k - 1) * d + 1;
  const values = new Float32Array(ke * ke * c * m);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++)
      for (let q = 0; q < c * m; q++)
        values[(i * d * ke + j * d) * c * m + q] = filter.values[(i * k + j) * c * m + q];
  return { values, shape: [ke, ke, c, m], dtype: 'float32' };
}

function takeDilatedTaps(full: Result, k: number, d: number): Result {
  const [ke, , c, m] = full.shape;
  const values = new Float32Array(k * k * c * m);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++)
      for (let q = 0; q < c * m; q++)
        values[(i * k + j) * c * m + q] = full.values[(i * d * ke + j * d) * c * m + q];
  return { values, shape: [k, k, c, m] };
}

describe('DepthwiseConv2dNativeBackpropFilter and …Input agree with cpu', () => {
  it.each(depthwiseCases)(
    'k=$k stride=$s dilation=$d $pad multiplier=$mult batch=$batch',
    async ({ k, s, d, pad, mult, batch, h, w, c }) => {
      const oh = outSize(h, k, s, d, pad);
      const ow = outSize(w, k, s, d, pad);
      const x = float([batch, h, w, c], 7);
      const dy = float([batch, oh, ow, c * mult], 8);
      const filter = float([k, k, c, mult], 9);
      const attrs = { strides: [s, s], dilations: [d, d], pad };
      const ke = (k - 1) * d + 1;
      const undilated = { ...attrs, dilations: [1, 1] };
      await expectAgreement(
        'DepthwiseConv2dNativeBackpropFilter',
        { x, dy },
        { ...attrs, filterShape: [k, k, c, mult] },
        d === 1
          ? undefined
          : async () =>
              takeDilatedTaps(
                await runKernel(
                  'cpu',
                  'DepthwiseConv2dNativeBackpropFilter',
                  { x, dy },
                  { ...undilated, filterShape: [ke, ke, c, mult] },
                ),
                k,
                d,
              ),
      );
      await expectAgreement(
        'DepthwiseConv2dNativeBackpropInput',
        { dy, filter },
        { ...attrs, inputShape: [batch, h, w, c] },
        d === 1
          ? undefined
          : () =>
              runKernel(
                'cpu',
                'DepthwiseConv2dNativeBackpropInput',
                { dy, filter: dilateFilter(filter, d) },
                { ...undilated, inputShape: [batch, h, w, c] },
              ),
      );
    },
  );
});

/** Values with many ties and windows that hold only values ≤ 0. */
function tiedNonPositive(shape: Shape, seed: number): HostTensor {
  const u = uniform(
    shape.reduce((p, q) => p * q, 1),
    seed,
  );
  return { values: u.map((v) => Math.floor(v * 3) - 1), shape, dtype: 'float32' };
}

async function maxPoolGradOn(
  backend: 'wasm' | 'cpu',
  x: HostTensor,
  dy: HostTensor,
  attrs: { filterSize: number[]; strides: number[]; pad: 'same' | 'valid' },
): Promise<Result> {
  await tf.setBackend(backend);
  const [xt, dyt] = [tf.tensor(x.values, x.shape), tf.tensor(dy.values, dy.shape)];
  const yt = tf.maxPool(
    xt as tf.Tensor4D,
    attrs.filterSize as [number, number],
    attrs.strides as [number, number],
    attrs.pad,
  );
  const out = tf
    .engine()
    .runKernel('MaxPoolGrad', { dy: dyt, input: xt, output: yt }, { ...attrs }) as tf.Tensor;
  const result = { shape: out.shape.slice(), values: out.dataSync() as Float32Array };
  tf.dispose([xt, dyt, yt, out]);
  await tf.setBackend('wasm');
  return result;
}

const poolCases = [
  ...[2, 3].flatMap((f) =>
    [1, 2].flatMap((s) =>
      PADS.flatMap((pad) => [
        { f, s, pad, batch: 1, h: 9, w: 8, c: 3 },
        { f, s, pad, batch: 100, h: 6, w: 7, c: 2 },
      ]),
    ),
  ),
  // 2×2 windows at stride 2 inside the input: the unrolled path (even and odd sizes)
  { f: 2, s: 2, pad: 'valid' as const, batch: 100, h: 26, w: 26, c: 16 },
  { f: 2, s: 2, pad: 'valid' as const, batch: 3, h: 11, w: 11, c: 32 },
  { f: 2, s: 2, pad: 'same' as const, batch: 2, h: 8, w: 6, c: 5 },
];

describe('memory-bound kernels shared over the SIMD pool', () => {
  /** Runs `f` with sharing from `values` values per thread up (undefined: never shared). */
  function withMinValues<T>(values: number | undefined, f: () => T): T {
    const saved = simdSettings.minValuesPerThread;
    simdSettings.minValuesPerThread = values ?? Number.MAX_SAFE_INTEGER;
    try {
      return f();
    } finally {
      simdSettings.minValuesPerThread = saved;
    }
  }
  const special = [NaN, -Infinity, Infinity, -0, 0];
  function withSpecial(shape: Shape, seed: number): tf.Tensor {
    const t = float(shape, seed);
    for (let i = 0; i < t.values.length; i += 7) t.values[i] = special[(i / 7) % special.length];
    return tf.tensor(t.values, shape);
  }
  const read = (t: tf.Tensor) => {
    const values = Array.from(t.dataSync());
    t.dispose();
    return values;
  };

  it('give the same values shared and on one thread, and cpu’s', async () => {
    const x = withSpecial([7, 10, 12, 8], 41);
    // Finite: cpu's MaxPoolGrad multiplies dy by 0 outside each window's maximum (NaN there).
    const dyValues = float([7, 5, 6, 8], 42);
    const dy = tf.tensor(dyValues.values, dyValues.shape);
    const g = withSpecial([7, 10, 12, 8], 43);
    const run = () => [
      read(reluGradient(g, x)),
      read(tf.sign(x)),
      read(tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid')),
      read(
        tf
          .engine()
          .runKernel(
            'MaxPoolGrad',
            { dy, input: x, output: tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid') },
            { filterSize: [2, 2], strides: [2, 2], pad: 'valid' },
          ) as tf.Tensor,
      ),
    ];
    const shared = withMinValues(64, run);
    const single = withMinValues(undefined, run);
    const same = (a: number[], b: number[]) => a.every((v, i) => Object.is(v, b[i]));
    shared.forEach((values, i) => expect([i, same(values, single[i])]).toEqual([i, true]));
    await tf.setBackend('cpu');
    const cpu = run();
    await tf.setBackend('wasm');
    shared.forEach((values, i) => expect([i, same(values, cpu[i])]).toEqual([i, true]));
    tf.dispose([x, dy, g]);
  });
});

describe('MaxPoolGrad routes exactly like cpu', () => {
  it.each(poolCases)(
    'pool=$f stride=$s $pad batch=$batch',
    async ({ f, s, pad, batch, h, w, c }) => {
      const x = tiedNonPositive([batch, h, w, c], 10);
      const dy = float([batch, outSize(h, f, s, 1, pad), outSize(w, f, s, 1, pad), c], 11);
      const attrs = { filterSize: [f, f], strides: [s, s], pad };
      const actual = await maxPoolGradOn('wasm', x, dy, attrs);
      const expected = await maxPoolGradOn('cpu', x, dy, attrs);
      expect(actual.shape).toEqual(expected.shape);
      expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
    },
  );

  it.each([true, false])(
    'routes NaN, ±∞ and −0 like cpu on the 2×2 path (SIMD kernel: %s)',
    async (simd) => {
      expect(simdKernels(tf.backend())).toBeDefined();
      const special = [NaN, -Infinity, Infinity, -0, 0, 1, -1, 1];
      const shape = [2, 6, 4, 8];
      const n = shape.reduce((a, b) => a * b, 1);
      const rand = seededRandom(12);
      const x: HostTensor = {
        values: Float32Array.from(
          { length: n },
          () => special[Math.floor(rand() * special.length)],
        ),
        shape,
        dtype: 'float32',
      };
      const dy = float([2, 3, 2, 8], 13);
      const attrs = { filterSize: [2, 2], strides: [2, 2], pad: 'valid' as const };
      const saved = simdSettings.enabled;
      simdSettings.enabled = simd;
      try {
        const actual = await maxPoolGradOn('wasm', x, dy, attrs);
        const expected = await maxPoolGradOn('cpu', x, dy, attrs);
        expect(Array.from(actual.values).map(Object.is.bind(null, 0))).toEqual(
          Array.from(expected.values).map(Object.is.bind(null, 0)),
        );
        expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
      } finally {
        simdSettings.enabled = saved;
      }
    },
  );

  it('routes the gradient of an all-negative window to its first maximum', async () => {
    const x: HostTensor = {
      values: Float32Array.from([-2, -1, -1, -3]),
      shape: [1, 2, 2, 1],
      dtype: 'float32',
    };
    const dy: HostTensor = {
      values: Float32Array.from([5]),
      shape: [1, 1, 1, 1],
      dtype: 'float32',
    };
    const out = await maxPoolGradOn('wasm', x, dy, {
      filterSize: [2, 2],
      strides: [2, 2],
      pad: 'valid',
    });
    expect(Array.from(out.values)).toEqual([0, 5, 0, 0]);
  });
});

const matMulShapes: { a: Shape; b: Shape }[] = [
  { a: [5, 7], b: [7, 6] },
  { a: [3, 5, 7], b: [3, 7, 6] },
  { a: [3, 5, 7], b: [7, 6] },
  { a: [1, 5, 7], b: [3, 7, 6] },
  { a: [100, 5, 7], b: [100, 7, 6] },
  { a: [2, 64, 64], b: [2, 64, 40] }, // large enough products to be looped
  { a: [2, 64, 64], b: [1, 64, 40] },
  { a: [100, 5, 7], b: [1, 7, 6] },
  // a small a and a wide b: with transposes, bᵀ·aᵀ then transposed (see swappedIsCheaper)
  { a: [10, 8], b: [8, 120] },
  { a: [1, 10, 8], b: [8, 120] },
];
const matMulCases = matMulShapes.flatMap(({ a, b }) =>
  [false, true].flatMap((transposeA) =>
    [false, true].map((transposeB) => ({ a, b, transposeA, transposeB })),
  ),
);

function swapLastTwo(shape: Shape, swap: boolean): Shape {
  if (!swap) return shape;
  const s = shape.slice();
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1], s[s.length - 2]];
  return s;
}

describe('BatchMatMul agrees with cpu', () => {
  // cpu broadcasts batch axes by flat index only ([2, 1] × [3] is wrong there), so a batch
  // broadcast over several axes is checked against TensorFlow's native backend when present.
  it('broadcasts batch axes like TensorFlow (when the native backend is loaded)', async () => {
    if (tf.findBackend('tensorflow') === null) return;
    const inputs = { a: float([2, 1, 7, 5], 12), b: float([3, 6, 7], 13) };
    const attrs = { transposeA: true, transposeB: true };
    const actual = await runKernel('wasm', 'BatchMatMul', inputs, attrs);
    const expected = await runKernel('tensorflow', 'BatchMatMul', inputs, attrs);
    expect(relativeError(actual, expected)).toBeLessThanOrEqual(TOLERANCE);
  });

  it('swaps the product where packing the small operand saves most (a dense layer’s input gradient)', () => {
    // dy [100, 64] · Wᵀ, W [800, 64]: pack dyᵀ (6,400 values) rather than Wᵀ (51,200)
    expect(swappedIsCheaper(100, 64, 800, false, true)).toBe(true);
    // the weight gradient xᵀ·dy, x [100, 800]: packing dy (6,400) is already the small one
    expect(swappedIsCheaper(800, 100, 64, true, false)).toBe(false);
    // no transposes: b may be a weight XNNPACK keeps packed between calls
    expect(swappedIsCheaper(1, 1000, 1000, false, false)).toBe(false);
    expect(swappedIsCheaper(10, 8, 120, false, true)).toBe(true);
    expect(swappedIsCheaper(10, 8, 120, true, true)).toBe(true);
  });

  it.each(matMulCases)(
    'a=$a b=$b transposeA=$transposeA transposeB=$transposeB',
    async ({ a, b, transposeA, transposeB }) => {
      await expectAgreement(
        'BatchMatMul',
        { a: float(swapLastTwo(a, transposeA), 12), b: float(swapLastTwo(b, transposeB), 13) },
        { transposeA, transposeB },
      );
    },
  );
});

const tileCases: { shape: Shape; reps: number[]; dtype: 'float32' | 'int32' | 'bool' }[] = [
  { shape: [5], reps: [3], dtype: 'float32' },
  { shape: [2, 3], reps: [1, 4], dtype: 'float32' },
  { shape: [2, 3], reps: [3, 1], dtype: 'int32' },
  { shape: [2, 3, 4], reps: [2, 1, 3], dtype: 'float32' },
  { shape: [100, 1, 1, 8], reps: [1, 5, 6, 1], dtype: 'float32' },
  { shape: [2, 3, 2, 2], reps: [2, 2, 2, 2], dtype: 'float32' },
  { shape: [2, 2], reps: [2, 3], dtype: 'bool' },
];

describe('Tile is identical to cpu', () => {
  it.each(tileCases)('shape=$shape reps=$reps $dtype', async ({ shape, reps, dtype }) => {
    const x = typed(shape, 14, dtype);
    const actual = await runKernel('wasm', 'Tile', { x }, { reps });
    const expected = await runKernel('cpu', 'Tile', { x }, { reps });
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });

  it('plans tiles as one broadcast, merging untiled axes', () => {
    expect(tileAsBroadcast([2, 3, 4], [1, 1, 5])).toEqual({
      xShape: [6, 1, 4],
      onesShape: [1, 5, 1],
    });
    expect(tileAsBroadcast([2, 3, 4], [2, 1, 1])).toEqual({ xShape: [1, 24], onesShape: [2, 1] });
    expect(tileAsBroadcast([2, 2, 2, 2], [2, 2, 2, 2])).toBeNull();
  });
});

const sumCases: { shape: Shape; axis: number[]; keepDims: boolean }[] = [
  // leading axes, width a multiple of 4: our SIMD column sums (16 columns a pass, then 4)
  { shape: [100, 26, 26, 16], axis: [0, 1, 2], keepDims: false }, // conv1's bias gradient
  { shape: [100, 11, 11, 32], axis: [0, 1, 2], keepDims: true },
  { shape: [100, 64], axis: [0], keepDims: false }, // a dense bias gradient
  { shape: [70, 3, 36], axis: [0, 1], keepDims: false },
  { shape: [3, 4, 8], axis: [0], keepDims: false },
  // the last axis alone, width a multiple of 4: our SIMD row sums
  { shape: [100, 28, 28, 16], axis: [3], keepDims: false }, // the input gradient's channel sum
  { shape: [7, 12], axis: [1], keepDims: true },
  { shape: [8], axis: [0], keepDims: false },
  // other widths: average pooling, or wasm's own
  { shape: [30, 20, 10], axis: [1, 0], keepDims: false },
  { shape: [300, 28, 28, 1], axis: [0, 1, 2], keepDims: false },
  { shape: [40, 30, 8], axis: [1, 2], keepDims: false }, // not leading: wasm's own
  { shape: [40, 30, 8], axis: [0, 1, 2], keepDims: true }, // all axes: wasm's own
  { shape: [3, 4, 5], axis: [0], keepDims: false }, // small: wasm's own
  { shape: [6, 10], axis: [1], keepDims: false }, // last axis, width not a multiple of 4
];

describe('Sum agrees with cpu', () => {
  it.each(sumCases)(
    'shape=$shape axis=$axis keepDims=$keepDims',
    async ({ shape, axis, keepDims }) => {
      await expectAgreement('Sum', { x: float(shape, 20) }, { axis, keepDims });
    },
  );

  it('sums int32 exactly (wasm’s own)', async () => {
    const x: HostTensor = {
      values: Int32Array.from({ length: 6000 }, (_, i) => i % 7),
      shape: [1000, 6],
      dtype: 'int32',
    };
    const actual = await runKernel('wasm', 'Sum', { x }, { axis: [0], keepDims: false });
    const expected = await runKernel('cpu', 'Sum', { x }, { axis: [0], keepDims: false });
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });
});

const addCases: { a: Shape; b: Shape; dtype?: 'int32' }[] = [
  { a: [100, 26, 26, 16], b: [16] }, // conv1's bias
  { a: [100, 11, 11, 32], b: [1, 1, 1, 32] },
  { a: [32], b: [300, 64, 32] }, // the bias first
  { a: [400, 64], b: [64] },
  { a: [4099, 8], b: [8] }, // rows prime: wasm's own
  { a: [400, 64], b: [400, 64] }, // no bias: wasm's own
  { a: [400, 64], b: [400, 1] }, // a column, not a bias: wasm's own
  { a: [100, 26, 26, 16], b: [16], dtype: 'int32' }, // int32: wasm's own
  { a: [3, 4], b: [4] }, // small: wasm's own
];

describe('Add and Cast are identical to cpu', () => {
  it.each(addCases)('Add a=$a b=$b $dtype', async ({ a, b, dtype }) => {
    const toDtype = (t: HostTensor): HostTensor =>
      dtype === 'int32'
        ? { ...t, values: Int32Array.from(t.values, (v) => Math.round(v * 1000)), dtype }
        : t;
    const inputs = { a: toDtype(float(a, 24)), b: toDtype(float(b, 25)) };
    const actual = await runKernel('wasm', 'Add', inputs, {});
    const expected = await runKernel('cpu', 'Add', inputs, {});
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });

  it('adds a bias to infinities, NaN and −0 as cpu does', async () => {
    const values = new Float32Array(20000);
    values.set([Infinity, -Infinity, NaN, -0, 0, 3.5, -2]);
    const x: HostTensor = { values, shape: [1000, 20], dtype: 'float32' };
    const bias: HostTensor = { values: new Float32Array(20), shape: [20], dtype: 'float32' };
    bias.values.set([0, 1, -Infinity, -0, -0, 1e30, 2]);
    const actual = await runKernel('wasm', 'Add', { a: x, b: bias }, {});
    const expected = await runKernel('cpu', 'Add', { a: x, b: bias }, {});
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
    expect(Object.is(actual.values[3], expected.values[3])).toBe(true);
  });

  it.each([
    ['float32', 'float32'],
    ['float32', 'int32'],
    ['int32', 'int32'],
    ['int32', 'float32'],
    ['bool', 'float32'],
  ] as const)('Cast %s to %s', async (from, to) => {
    const f = float([6, 7], 26);
    const values =
      from === 'float32'
        ? f.values.map((v) => v * 10)
        : from === 'int32'
          ? Int32Array.from(f.values, (v) => Math.round(v * 100))
          : Uint8Array.from(f.values, (v) => (v > 0 ? 1 : 0));
    const x: HostTensor = { values, shape: [6, 7], dtype: from };
    const actual = await runKernel('wasm', 'Cast', { x }, { dtype: to });
    const expected = await runKernel('cpu', 'Cast', { x }, { dtype: to });
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });
});

/** Broadcasts of the small-broadcast loop (and one above its size, for wasm's own path). */
const broadcastShapes: [Shape, Shape][] = [
  [
    [100, 1],
    [100, 10],
  ],
  [
    [100, 10],
    [100, 1],
  ],
  [
    [1, 10],
    [100, 10],
  ],
  [
    [3, 1, 4],
    [1, 5, 1],
  ],
  [
    [2, 3, 1, 5],
    [3, 4, 1],
  ],
  [[7], [3, 7]],
  [
    [200, 1],
    [200, 100],
  ],
];

describe('Sub, Multiply, RealDiv and Add broadcasts are identical to cpu', () => {
  const special = [NaN, -Infinity, Infinity, -0, 0, 1e-40, 3e38, -2];
  /** Seeded values with the special ones spread through. */
  function withSpecial(shape: Shape, seed: number): HostTensor {
    const t = float(shape, seed);
    for (let i = 0; i < t.values.length; i += 3)
      t.values[i] = special[(i / 3 + seed) % special.length];
    return t;
  }
  const cases = ['Sub', 'Multiply', 'RealDiv', 'Add'].flatMap((kernel) =>
    broadcastShapes.map(([a, b]) => ({ kernel, a, b })),
  );
  it.each(cases)('$kernel a=$a b=$b', async ({ kernel, a, b }) => {
    const inputs = { a: withSpecial(a, 31), b: withSpecial(b, 32) };
    const actual = await runKernel('wasm', kernel, inputs, {});
    const expected = await runKernel('cpu', kernel, inputs, {});
    expect(actual.shape).toEqual(expected.shape);
    const same = Array.from(actual.values).every((v, i) => Object.is(v, expected.values[i]));
    if (!same) expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
    expect(same).toBe(true);
  });
});

describe("ReLU's gradient is identical to cpu's", () => {
  const special = [NaN, -Infinity, Infinity, -0, 0, 1.5, -2.5];
  /** Values with some of `special` mixed in, from `seed`. */
  function mixed(n: number, seed: number): Float32Array {
    const rand = seededRandom(seed);
    return Float32Array.from({ length: n }, () =>
      rand() < 0.4 ? special[Math.floor(rand() * special.length)] : rand() - 0.5,
    );
  }

  /** ∂/∂x Σ relu(x)·w (so dy = w), and the second derivative, on `backend`. */
  async function gradients(backend: 'wasm' | 'cpu', xv: Float32Array, wv: Float32Array) {
    await tf.setBackend(backend);
    const [x, w] = [tf.tensor(xv, [3, 7, 5]), tf.tensor(wv, [3, 7, 5])];
    const first = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), w)))(x);
    const second = tf.grad((t: tf.Tensor) =>
      tf.sum(tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.relu(u), w)))(t)),
    )(x);
    const out = { first: Array.from(first.dataSync()), second: Array.from(second.dataSync()) };
    tf.dispose([x, w, first, second]);
    await tf.setBackend('wasm');
    return out;
  }

  it.each([true, false])('with NaN, ±∞ and ±0 in x and dy (SIMD kernel: %s)', async (simd) => {
    const xv = mixed(105, 31);
    const wv = mixed(105, 32);
    const saved = simdSettings.enabled;
    simdSettings.enabled = simd;
    try {
      const actual = await gradients('wasm', xv, wv);
      const expected = await gradients('cpu', xv, wv);
      const same = (a: number[], b: number[]) => a.every((v, i) => Object.is(v, b[i]));
      expect(same(actual.first, expected.first)).toBe(true);
      expect(same(actual.second, expected.second)).toBe(true);
    } finally {
      simdSettings.enabled = saved;
    }
  });

  it('goes through our kernel on wasm only', () => {
    expect(tf.getKernel(RELU_GRAD_KERNEL, 'wasm')).toBeDefined();
    expect(tf.getKernel(RELU_GRAD_KERNEL, 'cpu')).toBeUndefined();
  });
});

describe('Sign is identical to cpu', () => {
  it.each([
    { shape: [7], simd: true },
    { shape: [3, 1001], simd: true },
    { shape: [3, 1001], simd: false },
  ])(
    'float32 shape=$shape, with NaN, ±∞, ±0 and tiny values (SIMD: $simd)',
    async ({ shape, simd }) => {
      const special = [NaN, -Infinity, Infinity, -0, 0, 2.5, -1e-30, 1e-30, 3e-7, -3e-7];
      const n = shape.reduce((a, b) => a * b, 1);
      const rand = seededRandom(21);
      const x: HostTensor = {
        values: Float32Array.from({ length: n }, () =>
          rand() < 0.5 ? special[Math.floor(rand() * special.length)] : rand() - 0.5,
        ),
        shape,
        dtype: 'float32',
      };
      const saved = simdSettings.enabled;
      simdSettings.enabled = simd;
      try {
        const actual = await runKernel('wasm', 'Sign', { x }, {});
        const expected = await runKernel('cpu', 'Sign', { x }, {});
        expect(actual.shape).toEqual(expected.shape);
        expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
      } finally {
        simdSettings.enabled = saved;
      }
    },
  );
});

describe('Identity, GatherV2 and Slice are identical to cpu', () => {
  it.each(['float32', 'int32', 'bool'] as const)(
    'Identity of %s shares nothing visible',
    async (dtype) => {
      const x = typed([4, 5], 21, dtype);
      const values = x.values;
      const actual = await runKernel('wasm', 'Identity', { x }, {});
      expect(actual.shape).toEqual([4, 5]);
      expect(Array.from(actual.values)).toEqual(Array.from(values));
    },
  );

  it('a clone outlives its source and vice versa', () => {
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    const c = tf.clone(b);
    c.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
  });

  const gatherCases: { shape: Shape; indices: number[]; axis: number; batchDims?: number }[] = [
    { shape: [50, 28, 28, 1], indices: [3, 49, 0, 3, 17], axis: 0 }, // a batch of images
    { shape: [20, 10], indices: [19, 0, 5], axis: 0 },
    { shape: [4, 6, 9], indices: [5, 0, 2, 2], axis: 1 },
    { shape: [6, 3], indices: [1, 2], axis: 1 }, // small slices: wasm's own
  ];
  it.each(gatherCases)('GatherV2 shape=$shape axis=$axis', async ({ shape, indices, axis }) => {
    const x = float(shape, 22);
    const idx: HostTensor = {
      values: Int32Array.from(indices),
      shape: [indices.length],
      dtype: 'int32',
    };
    const actual = await runKernel('wasm', 'GatherV2', { x, indices: idx }, { axis, batchDims: 0 });
    const expected = await runKernel(
      'cpu',
      'GatherV2',
      { x, indices: idx },
      { axis, batchDims: 0 },
    );
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });

  it('GatherV2 with batch dimensions and int32 values', async () => {
    const x: HostTensor = {
      values: Int32Array.from({ length: 2 * 5 * 12 }, (_, i) => i),
      shape: [2, 5, 12],
      dtype: 'int32',
    };
    const idx: HostTensor = {
      values: Int32Array.from([4, 0, 1, 1, 3, 2]),
      shape: [2, 3],
      dtype: 'int32',
    };
    const attrs = { axis: 1, batchDims: 1 };
    const actual = await runKernel('wasm', 'GatherV2', { x, indices: idx }, attrs);
    const expected = await runKernel('cpu', 'GatherV2', { x, indices: idx }, attrs);
    expect(actual.shape).toEqual(expected.shape);
    expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
  });

  it('GatherV2 refuses an index out of range', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([10, 16]);
    const idx = tf.tensor1d([10], 'int32');
    expect(() => tf.gather(x, idx)).toThrow(/index value 10 is not in \[0, 9\]/);
    tf.dispose([x, idx]);
  });

  const sliceCases: { shape: Shape; begin: number[]; size: number[]; dtype?: 'int32' | 'bool' }[] =
    [
      { shape: [1000, 28, 28, 1], begin: [100, 0, 0, 0], size: [100, -1, -1, -1] },
      { shape: [100, 28, 28, 1], begin: [0, 1, 2, 0], size: [100, 26, 26, 1] },
      { shape: [7, 9, 11, 5], begin: [1, 2, 3, 1], size: [5, 6, 7, 3] },
      { shape: [1000, 10], begin: [500, 0], size: [100, 10] },
      { shape: [40, 50], begin: [3, 7], size: [30, 40] },
      { shape: [6, 7, 8], begin: [0, 0, 2], size: [6, 7, 3], dtype: 'int32' },
      { shape: [5, 4], begin: [1, 1], size: [3, 2], dtype: 'bool' },
      { shape: [100], begin: [10], size: [50] },
      { shape: [3, 4], begin: [1, 0], size: [0, 4] },
    ];
  it.each(sliceCases)(
    'Slice shape=$shape begin=$begin size=$size',
    async ({ shape, begin, size, dtype }) => {
      const x = typed(shape, 23, dtype ?? 'float32');
      const actual = await runKernel('wasm', 'Slice', { x }, { begin, size });
      const expected = await runKernel('cpu', 'Slice', { x }, { begin, size });
      expect(actual.shape).toEqual(expected.shape);
      expect(Array.from(actual.values)).toEqual(Array.from(expected.values));
    },
  );

  it('plans slices as contiguous blocks, merging whole trailing axes', () => {
    expect(sliceBlocks([100, 28, 28, 1], [0, 1, 2, 0], [100, 26, 26, 1])).toEqual({
      block: 26,
      outerSizes: [100, 26],
      outerStrides: [784, 28],
      offset: 30,
    });
    expect(sliceBlocks([1000, 28, 28, 1], [100, 0, 0, 0], [100, 28, 28, 1])).toEqual({
      block: 78400,
      outerSizes: [],
      outerStrides: [],
      offset: 78400,
    });
  });
});

describe('memory', () => {
  it('keeps numTensors and wasm data flat over repeated gradients through our kernels', () => {
    const x = tf.tensor4d(uniform(2 * 9 * 9 * 3, 15), [2, 9, 9, 3]);
    // filter gradients: patches in JS (3 → 4), our direct kernel (4 → 8), SIMD patches (8 → 6)
    const w0 = tf.tensor4d(uniform(3 * 3 * 3 * 4, 16), [3, 3, 3, 4]);
    const w1 = tf.tensor4d(uniform(3 * 3 * 4 * 8, 19), [3, 3, 4, 8]);
    const w2 = tf.tensor4d(uniform(3 * 3 * 8 * 6, 20), [3, 3, 8, 6]);
    const dw = tf.tensor4d(uniform(3 * 3 * 6 * 2, 17), [3, 3, 6, 2]);
    const m = tf.tensor2d(uniform(48 * 5, 18), [48, 5]);
    const loss = (weights: tf.Tensor4D[]) => {
      const [xi, a, b, c, d] = weights;
      const h0 = tf.relu(tf.conv2d(xi, a, 1, 'same'));
      const h1 = tf.relu(tf.conv2d(h0, b, 2, 'same'));
      const h2 = tf.conv2d(h1, c, 1, 'same');
      const dep = tf.depthwiseConv2d(h2, d, 1, 'same');
      const pooled = tf.maxPool(dep, 2, 2, 'valid');
      const flat = tf.reshape(pooled, [2, -1]);
      return tf.sign(tf.sum(tf.matMul(tf.tile(flat, [1, 1]), m))).add(tf.sum(flat));
    };
    const grads = tf.grads((...weights) => loss(weights as tf.Tensor4D[]));
    const step = () => tf.dispose(grads([x, w0, w1, w2, dw]));
    step();
    const before = tf.memory().numTensors;
    const dataBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 5; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(dataBefore);
    tf.dispose([x, w0, w1, w2, dw, m]);
  });
});
