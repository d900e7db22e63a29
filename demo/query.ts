/**
 * The demo page's URL parameters, checked: each overrides one of {@link DEMO}'s defaults.
 * Pure (no DOM): the page passes `location.search`, the tests call it directly.
 */
import { BROWSER_BACKENDS, type BrowserBackendId } from '../src/kernels/browser-backend';
import { FILTER_IDS, type FilterId } from '../src/analysis/types';
import { DEMO } from './settings';

/** The demo's settings after the URL's overrides. */
export interface DemoQuery {
  /** `?epochs=N`: training epochs. */
  epochs: number;
  /** `?train=N`: training digits (at most {@link DEMO.trainSize}). */
  trainSize: number;
  /** `?examples=N`: digits the analysis runs on (at most {@link DEMO.testSize}). */
  examples: number;
  /** `?steps=K`: thresholds per filter sweep (≥ 3). */
  steps: number;
  /** `?filters=lowpass,highpass`: the analysis' filters. */
  filters: FilterId[];
  /** `?backend=`: one of {@link BROWSER_BACKENDS}; default the first that initialises. */
  backend?: BrowserBackendId;
}

function integer(
  query: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max = Infinity,
) {
  const raw = query.get(name);
  const value = raw === null ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `an integer ≥ ${min}` : `an integer ${min}–${max}`;
    throw new Error(`?${name}= must be ${range}; got '${raw}'`);
  }
  return value;
}

function filters(query: URLSearchParams): FilterId[] {
  const raw = query.get('filters');
  if (raw === null) return [...DEMO.analysis.filters];
  const names = raw.split(',').map((f) => f.trim());
  const wrong = names.find((f) => !(FILTER_IDS as readonly string[]).includes(f));
  if (wrong !== undefined || new Set(names).size !== names.length) {
    throw new Error(
      `?filters= must be distinct names among ${FILTER_IDS.join(', ')}, comma-separated; got '${raw}'`,
    );
  }
  return names as FilterId[];
}

/** Reads and checks the page's URL parameters (`location.search`). */
export function parseDemoQuery(search: string): DemoQuery {
  const query = new URLSearchParams(search);
  const backend = query.get('backend') ?? undefined;
  if (backend !== undefined && !(BROWSER_BACKENDS as readonly string[]).includes(backend)) {
    throw new Error(`?backend= must be one of ${BROWSER_BACKENDS.join(', ')}; got '${backend}'`);
  }
  return {
    epochs: integer(query, 'epochs', DEMO.epochs, 1),
    trainSize: integer(query, 'train', DEMO.trainSize, 1, DEMO.trainSize),
    examples: integer(query, 'examples', DEMO.testSize, 1, DEMO.testSize),
    steps: integer(query, 'steps', DEMO.analysis.steps, 3, 10000),
    filters: filters(query),
    backend: backend as BrowserBackendId | undefined,
  };
}
