import { initBackend } from '../../src/backend';

beforeAll(async () => {
  await initBackend({ log: () => undefined });
});
