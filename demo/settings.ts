/** The browser demo's settings (URL parameters override epochs, backend and the training size); bench/tools/browser-demo.ts runs the same in Node. */
export const DEMO = {
  epochs: 3,
  trainSize: 1000,
  testSize: 100,
  batchSize: 100,
  analysis: { epsilon: 0.1, steps: 5, filters: ['lowpass', 'highpass'], batchSize: 100 },
} as const;
