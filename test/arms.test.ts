import * as fs from 'fs';
import * as path from 'path';
import { runRecipe, type FrozenRecord, RUN_FILES, validateRecipe } from '../src/experiment';
import { createProgress } from '../src/experiment/progress';
import { runResultLines } from '../cli/main';
import { buildModel } from '../src/models';
import { tempRuns, tinyRecipe } from './recipes-helpers';

const ARMS = ['normal', 'selective', 'random-freeze', 'adversarial', 'selective-adversarial'];

describe('retraining arms', () => {
  const out = tempRuns('arms');
  const recipe = () =>
    tinyRecipe({
      training: { batchSize: 50, epochs: 1, seed: 3 },
      retraining: { enabled: true, epochs: 2, seeds: [5, 6], arms: ARMS },
    });

  it('runs every arm from the same checkpoint and compares each with normal', async () => {
    const first = await runRecipe(recipe(), {
      outDir: out,
      progress: createProgress({ silent: true }),
    });
    expect(first.status).toBe('finished');
    const phases = [...new Set(first.rows.map((r) => r.phase))];
    expect(phases).toEqual(['train', ...[5, 6].flatMap((s) => ARMS.map((arm) => `${arm}-s${s}`))]);
    const comparison = first.comparison;
    if (!comparison) throw new Error('no comparison');
    expect(comparison.arms).toEqual(ARMS);
    expect(Object.keys(comparison.gains ?? {})).toEqual(ARMS.slice(1));
    expect(comparison.gains?.adversarial.fgsm.n).toBe(2);
    expect(comparison.seeds[1]['random-freeze']).toMatchObject({ frozenAtEnd: expect.any(Number) });

    // random-freeze froze as many layers as selective did, epoch by epoch, but chose at random
    const frozen = JSON.parse(
      fs.readFileSync(path.join(first.dir, RUN_FILES.frozen), 'utf8'),
    ) as FrozenRecord[];
    for (const seed of [5, 6]) {
      const of = (arm: string) =>
        frozen.filter((r) => r.phase === `${arm}-s${seed}`).map((r) => r.layers.length);
      expect(of('random-freeze')).toEqual(of('selective'));
      expect(of('selective').length).toBe(2);
    }
    expect(frozen.some((r) => r.phase.startsWith('selective-s') && r.layers.length > 0)).toBe(true);

    // the fraction of weights frozen: the frozen layers' elements over all trainable elements
    const model = buildModel('small_cnn', { inputShape: [28, 28, 1], classes: 10 });
    const size = (names: string[]) =>
      model.layers
        .filter((l) => names.includes(l.name))
        .flatMap((l) => l.weights)
        .reduce((sum, w) => sum + w.shape.reduce<number>((a, b) => a * (b ?? 0), 1), 0);
    const total = size(model.layers.map((l) => l.name));
    for (const record of frozen) {
      expect(record.weights).toEqual({ frozen: size(record.layers), total });
    }
    model.dispose();

    // the selective arms skip the analysis after their final epoch (its labels decide nothing)
    const analysed = fs
      .readdirSync(path.join(first.dir, RUN_FILES.analysis, 'selective-s5'))
      .filter((f) => f.endsWith('.json'));
    expect(analysed.sort()).toEqual(['epoch-001.json', 'start.json']);

    // the CLI summary names each arm's gain with its interval and says what it allows
    const lines = runResultLines(first).join('\n');
    for (const arm of ARMS.slice(1)) expect(lines).toContain(`${arm} − normal: FGSM `);
    expect(lines).toMatch(/95% CI \[/);

    // same recipe, same seeds: the same batches, attacks and random choices, so the same numbers
    const second = await runRecipe(recipe(), {
      outDir: out,
      progress: createProgress({ silent: true }),
    });
    const accuracies = (rows: typeof first.rows) =>
      rows.map((r) => [r.phase, r.epoch, r.loss, r.test_acc, r.test_fgsm_acc, r.frozen_layers]);
    expect(accuracies(second.rows)).toEqual(accuracies(first.rows));
  });

  it('refuses arms without normal, random-freeze without selective, and retraining without a validation split', () => {
    expect(() =>
      tinyRecipe({ retraining: { enabled: true, arms: ['selective', 'adversarial'] } }),
    ).toThrow(/\/retraining\/arms: must include "normal"/);
    expect(() =>
      tinyRecipe({ retraining: { enabled: true, arms: ['normal', 'random-freeze'] } }),
    ).toThrow(/"random-freeze" freezes as many layers as "selective" did/);
    expect(() =>
      validateRecipe(
        {
          model: { architecture: 'small_cnn' },
          dataset: { name: 'mnist', trainSize: 300, testSize: 100 },
          analysis: { epsilon: 0.3, examples: 50 },
          retraining: { enabled: true },
        },
        'r',
      ),
    ).toThrow(/\/dataset\/validationSize: retraining needs a validation split/);
    expect(tinyRecipe().retraining.arms).toEqual(['normal', 'selective']);
  });
});
