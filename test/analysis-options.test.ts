import {
  ANALYZE_OPTIONS_SCHEMA,
  countLabels,
  labelCounts,
  labelTotals,
  resolveAnalyzeOptions,
  type AnalysisReport,
  type FilterId,
  type Label,
} from '../src/analysis';
import { RECIPE_SCHEMA } from '../src/experiment/schema';
import { RecipeError, validateRecipe } from '../src/experiment/validate';
import { summaryLogs } from '../callbacks/synaptic-filter-callback';
import { analysisMetrics } from '../callbacks/mlflow-records';

const properties = ANALYZE_OPTIONS_SCHEMA.properties as Record<string, { default?: unknown }>;

function recipeProblems(analysis: Record<string, unknown>): string[] {
  try {
    validateRecipe({ model: { architecture: 'small_cnn' }, analysis });
  } catch (err) {
    return (err as RecipeError).problems;
  }
  return [];
}

function analyzeProblems(options: Record<string, unknown>): string[] {
  try {
    resolveAnalyzeOptions(options as never);
  } catch (err) {
    return (err as Error).message.split('\n');
  }
  return [];
}

describe('analysis options, defined once (ANALYZE_OPTIONS_SCHEMA)', () => {
  it('analyze() fills in the schema defaults, resolves aliases and the PGD default', () => {
    const resolved = resolveAnalyzeOptions({ epsilon: 0.2, filters: ['h_c', 'h_a'] });
    for (const [name, schema] of Object.entries(properties)) {
      if (name !== 'filters' && schema.default !== undefined) {
        expect([name, (resolved as unknown as Record<string, unknown>)[name]]).toEqual([
          name,
          schema.default,
        ]);
      }
    }
    expect(resolved.filters).toEqual(['pulse', 'highpass']);
    expect(resolved.pgd).toBeUndefined();
    const pgd = resolveAnalyzeOptions({ epsilon: 0.2, attack: 'pgd' });
    expect(pgd.pgd).toEqual({ steps: 10, stepSize: 0.05 });
  });

  it('a recipe section gets the same defaults as analyze(), plus only its own four fields', () => {
    const recipe = validateRecipe({
      model: { architecture: 'small_cnn' },
      analysis: { epsilon: 1 },
    });
    const resolved = resolveAnalyzeOptions({ epsilon: 1 });
    for (const [name, schema] of Object.entries(properties)) {
      if (schema.default !== undefined) {
        expect((recipe.analysis as unknown as Record<string, unknown>)[name]).toEqual(
          (resolved as unknown as Record<string, unknown>)[name],
        );
      }
    }
    const section = RECIPE_SCHEMA.properties.analysis.properties as Record<string, unknown>;
    for (const name of Object.keys(properties)) expect(section[name]).toEqual(properties[name]);
    expect(Object.keys(section).filter((k) => !(k in properties))).toEqual([
      'enabled',
      'examples',
      'every',
      'atStart',
    ]);
  });

  it('resolved options are frozen and are not validated again', () => {
    const onProgress = () => undefined;
    const resolved = resolveAnalyzeOptions({ epsilon: 0.1, parameters: [/conv/], onProgress });
    expect(Object.isFrozen(resolved)).toBe(true);
    expect(Object.isFrozen(resolved.filters)).toBe(true);
    expect(resolveAnalyzeOptions(resolved)).toBe(resolved);
    // The caller's own objects are not frozen.
    const given = { epsilon: 0.1, attack: 'pgd' as const, pgd: { steps: 2, stepSize: 0.05 } };
    const own = resolveAnalyzeOptions({ ...given, clip: [0, 1] as [number, number] });
    expect(Object.isFrozen(own.pgd)).toBe(true);
    expect(Object.isFrozen(given.pgd)).toBe(false);
    expect(resolved.parameters).toEqual([/conv/]);
    expect(resolved.onProgress).toBe(onProgress);
    // A copy is a new object: validated again.
    expect(() => resolveAnalyzeOptions({ ...resolved, epsilon: -1 })).toThrow(
      /option 'epsilon' must be > 0; got -1/,
    );
  });

  it('a bad selection names the option, what is allowed and the value', () => {
    expect(analyzeProblems({ epsilon: 0.1, parameters: [3] })).toEqual([
      expect.stringMatching(
        /^analyze: option 'parameters' does not match any allowed form \(Weight names to analyse.*\); got \[3\]$/,
      ),
    ]);
    expect(analyzeProblems({ epsilon: 0.1, onProgress: 'yes' })).toEqual([
      `analyze: option 'onProgress' must be a function; got "yes"`,
    ]);
  });

  it.each([
    ['pgd', { attack: 'fgsm', pgd: { steps: 2, stepSize: 0.1 } }, /only used with attack "pgd"/],
    ['clip', { clip: [1, 0] }, /must be \[low, high\] with low < high; got \[1,0\]/],
    ['filters', { filters: ['h_a', 'highpass'] }, /names the same filter twice/],
  ])(
    'the rule across options on %s reads the same in analyze() and in a recipe',
    (option, change, message) => {
      const fromCode = analyzeProblems({ epsilon: 0.1, ...change });
      const fromRecipe = recipeProblems({ epsilon: 0.1, ...change });
      expect(fromCode).toHaveLength(1);
      expect(fromCode[0]).toMatch(message);
      const problem = fromCode[0].replace(`analyze: option '${option}' `, '');
      expect(fromRecipe).toEqual([`/analysis/${option}: ${problem}`]);
    },
  );
});

describe('label counts (one function)', () => {
  const labels: Label[] = ['fragile', 'robust', 'antifragile', 'robust'];
  function report(): AnalysisReport {
    const parameters = labels.map((label, i) => {
      const result = (l: Label, score: number) => ({
        steps: [],
        scores: { clean: score, adversarial: -score, difference: 2 * score },
        labels: { clean: l, adversarial: l, difference: 'robust' as Label },
        unnormalised: { clean: false, adversarial: false },
      });
      const filters: Partial<Record<FilterId, ReturnType<typeof result>>> = {
        highpass: result(label, i),
      };
      if (i % 2 === 0) filters.pulse = result('fragile', i);
      return {
        name: `p${i}`,
        layer: `l${i}`,
        shape: [1],
        size: 1,
        depth: i / 4,
        filters,
        evaluated: 1,
      };
    });
    return {
      reference: { clean: 1, adversarial: 0.5 },
      parameters,
      options: {} as AnalysisReport['options'],
      backend: 'cpu',
      seconds: 0,
      examples: 1,
    };
  }

  it('counts each label per filter and score, and every consumer uses those counts', () => {
    const r = report();
    const counts = labelCounts(r);
    expect(Object.keys(counts).sort()).toEqual(['highpass', 'pulse']);
    expect(counts.highpass?.clean).toEqual({ fragile: 1, robust: 2, antifragile: 1 });
    expect(counts.pulse?.adversarial).toEqual({ fragile: 2, robust: 0, antifragile: 0 });
    expect(counts.pulse?.difference).toEqual({ fragile: 0, robust: 2, antifragile: 0 });
    const totals = labelTotals(counts);
    expect(totals.clean).toEqual({ fragile: 3, robust: 2, antifragile: 1 });

    const logs = summaryLogs(r);
    expect([logs.fragile_clean, logs.robust_clean, logs.antifragile_clean]).toEqual([3, 2, 1]);
    const metrics = analysisMetrics(r);
    expect(metrics['labels_clean/highpass/robust']).toBe(2);
    expect(metrics['labels_adversarial/pulse/fragile']).toBe(2);
    expect(metrics['labels_adversarial/pulse/antifragile']).toBe(0);
  });

  it('gives a row of zeros to a filter with nothing to count', () => {
    const counts = countLabels([{ filter: 'lowpass', score: 'clean', label: 'robust' }], ['pulse']);
    expect(counts.pulse?.clean).toEqual({ fragile: 0, robust: 0, antifragile: 0 });
    expect(counts.lowpass?.clean.robust).toBe(1);
  });
});
