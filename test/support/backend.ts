import { initBackend } from '../../src/kernels/backend';

beforeAll(async () => {
  await initBackend({ log: () => undefined });
});
