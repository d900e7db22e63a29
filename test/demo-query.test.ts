/** The demo page's URL parameters (demo/query.ts): defaults, overrides, and errors naming the value. */
import { parseDemoQuery } from '../demo/query';
import { DEMO } from '../demo/settings';

describe('the demo page URL parameters', () => {
  it('default to the demo settings', () => {
    expect(parseDemoQuery('')).toEqual({
      epochs: DEMO.epochs,
      trainSize: DEMO.trainSize,
      examples: DEMO.testSize,
      steps: DEMO.analysis.steps,
      filters: [...DEMO.analysis.filters],
      backend: undefined,
    });
  });

  it('override the run and the analysis size', () => {
    const query = parseDemoQuery(
      '?epochs=2&backend=webgl&train=100&examples=10&steps=3&filters=lowpass',
    );
    expect(query).toEqual({
      epochs: 2,
      trainSize: 100,
      examples: 10,
      steps: 3,
      filters: ['lowpass'],
      backend: 'webgl',
    });
  });

  it.each([
    ['?steps=2', /\?steps= must be an integer 3–10000; got '2'/],
    ['?examples=101', /\?examples= must be an integer 1–100; got '101'/],
    ['?train=0', /\?train= must be an integer 1–1000; got '0'/],
    ['?epochs=1.5', /\?epochs= must be an integer ≥ 1; got '1.5'/],
    [
      '?filters=lowpass,lowpass',
      /\?filters= must be distinct names among .*; got 'lowpass,lowpass'/,
    ],
    ['?filters=median', /got 'median'/],
    ['?backend=metal', /\?backend= must be one of webgl, wasm, cpu; got 'metal'/],
  ])('%s is refused with the value in the error', (search, message) => {
    expect(() => parseDemoQuery(search)).toThrow(message);
  });
});
