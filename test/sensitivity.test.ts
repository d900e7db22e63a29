/**
 * The sensitivity study of selective retraining: forks of a run continue from its checkpoint with
 * the kept phases' results, the selective arm's own τ decides freezing, and the table's
 * intervals are the paired t-intervals (and their Bonferroni widening) of hand-worked values.
 */
import * as fs from 'fs';
import * as path from 'path';
import { forkRun } from '../src/experiment/fork';
import { runRecipe, RUN_FILES, type Comparison, type RunManifest } from '../src/experiment';
import { createProgress } from '../src/experiment/progress';
import {
  sensitivityCells,
  sensitivitySentences,
  summarizeCell,
} from '../src/experiment/sensitivity';
import { sensitivity, sensitivityMain, summarizeStudy } from '../cli/sensitivity';
import { tempRuns, tinyRecipe, writeTinySystem } from './recipes-helpers';

const silent = () => createProgress({ silent: true });
const ARMS = ['normal', 'selective', 'random-freeze'];

describe('forkRun', () => {
  const out = tempRuns('fork');
  const recipe = (retraining: Record<string, unknown> = {}) =>
    tinyRecipe({
      training: { batchSize: 50, epochs: 1, seed: 3 },
      retraining: { enabled: true, epochs: 2, seeds: [5], arms: ARMS, ...retraining },
    });

  it('continues from the source checkpoint: the same recipe gives the same rows; its own τ decides freezing', async () => {
    const base = await runRecipe(recipe(), { outDir: out, progress: silent(), report: false });
    expect(base.status).toBe('finished');
    const fork = forkRun(base.dir, out, recipe(), ['train', 'normal-s5']);
    const info = fork.readJson<RunManifest>(RUN_FILES.info);
    expect(info.completedPhases).toEqual(['train', 'normal-s5']);
    expect(info.forkedFrom).toEqual({
      run: path.basename(base.dir),
      phases: ['train', 'normal-s5'],
    });
    expect(fork.readMetrics().map((r) => r.phase)).toEqual(
      base.rows.filter((r) => ['train', 'normal-s5'].includes(r.phase)).map((r) => r.phase),
    );

    const again = await runRecipe(recipe(), { resume: fork.dir, outDir: out, progress: silent() });
    const numbers = (rows: typeof base.rows) =>
      rows.map((r) => [r.phase, r.epoch, r.loss, r.test_acc, r.test_fgsm_acc, r.frozen_layers]);
    expect(numbers(again.rows)).toEqual(numbers(base.rows));
    expect(again.comparison?.gains).toEqual(base.comparison?.gains);

    // τ so large that no score is below −τ: nothing is frozen, so selective trains as normal does
    const loose = recipe({ tolerance: 1e9 });
    const forked = forkRun(base.dir, out, loose, ['train', 'normal-s5']);
    const run = await runRecipe(loose, { resume: forked.dir, outDir: out, progress: silent() });
    const of = (phase: string) =>
      run.rows.filter((r) => r.phase === phase).map((r) => [r.test_acc, r.test_fgsm_acc]);
    expect(of('selective-s5')).toEqual(of('normal-s5'));
    expect(run.rows.filter((r) => r.phase === 'selective-s5').map((r) => r.frozen_layers)).toEqual([
      0, 0,
    ]);
    expect(base.rows.some((r) => r.phase === 'selective-s5' && Number(r.frozen_layers) > 0)).toBe(
      true,
    );
  });

  it('refuses a recipe that changes what made the kept phases, and phases that did not complete', async () => {
    const dir = fs.readdirSync(out).find((d) => !d.startsWith('.'));
    if (!dir) throw new Error('the first test left no run folder');
    const source = path.join(out, dir);
    const other = tinyRecipe({
      training: { batchSize: 50, epochs: 1, seed: 3 },
      analysis: { epsilon: 0.1, steps: 3, filters: ['lowpass'], examples: 60, batchSize: 60 },
      retraining: { enabled: true, epochs: 2, seeds: [5], arms: ARMS },
    });
    expect(() => forkRun(source, out, other, ['train'])).toThrow(
      /the recipe's 'analysis' differs from .*; a fork may change 'retraining' only/,
    );
    expect(() => forkRun(source, out, recipe(), ['train', 'normal-s9'])).toThrow(
      /phase 'normal-s9' has not completed/,
    );
  });
});

/** A comparison of one seed with the given FGSM accuracies (clean and PGD follow FGSM). */
function seedComparison(seed: number, normal: number, selective: number, random: number) {
  const arm = (fgsm: number, frozenAtEnd?: number) => ({
    clean: 0.9 + fgsm / 10,
    fgsm,
    pgd: fgsm / 2,
    ...(frozenAtEnd === undefined ? {} : { frozenAtEnd }),
  });
  return {
    seeds: [
      {
        seed,
        start: arm(0.4),
        normal: arm(normal),
        selective: arm(selective, 2),
        'random-freeze': arm(random, 2),
      },
    ],
  } as unknown as Comparison;
}

describe('the sensitivity table', () => {
  it('pairs selective with random-freeze over seeds, with the t-interval and its Bonferroni widening', () => {
    const runs = [
      seedComparison(0, 0.5, 0.52, 0.5),
      seedComparison(1, 0.6, 0.61, 0.62),
      seedComparison(2, 0.7, 0.75, 0.71),
    ];
    const cell = { score: 'adversarial' as const, rule: 'any' as const, tolerance: 0.02 };
    const one = summarizeCell(cell, runs, 1);
    const diff = one.gains.selectiveVsRandom.fgsm;
    // differences 0.02, −0.01, 0.04: mean 1/60, sd 0.0251661, t(0.975, 2) = 4.302653
    expect(diff.mean).toBeCloseTo(0.0166667, 6);
    expect(diff.std).toBeCloseTo(0.0251661, 6);
    expect(diff.ci95[0]).toBeCloseTo(0.0166667 - 0.0625161, 5);
    expect(diff.ci95[1]).toBeCloseTo(0.0166667 + 0.0625161, 5);
    expect(one.fgsmVsRandomCorrected[0]).toBeCloseTo(diff.ci95[0], 9); // one cell: no widening
    // 12 cells: t(1 − 0.025/12, 2) = 15.443479
    const twelve = summarizeCell(cell, runs, 12);
    expect(twelve.fgsmVsRandomCorrected[1] - diff.mean).toBeCloseTo(
      (15.443479 * 0.0251661) / Math.sqrt(3),
      3,
    );
    expect(one.gains.selective.fgsm.mean).toBeCloseTo((0.02 + 0.01 + 0.05) / 3, 9);
    expect(one.gains.randomFreeze.fgsm.mean).toBeCloseTo((0 + 0.02 + 0.01) / 3, 9);
    expect(one.frozenAtEnd).toBe(2);

    const sentences = sensitivitySentences([one]).join(' ');
    expect(sentences).toContain('above 0 in 0');
    expect(sentences).toContain('no setting makes the analysis beat random freezing');
    const clear = summarizeCell(
      cell,
      [seedComparison(0, 0.5, 0.6, 0.5), seedComparison(1, 0.5, 0.61, 0.5)],
      1,
    );
    expect(sensitivitySentences([clear]).join(' ')).toMatch(
      /the analysis beats random freezing in adversarial\/any\/τ 0.02 \(\+10.5 points/,
    );
  });

  it('spans score × rule × tolerance', () => {
    const cells = sensitivityCells({
      scores: ['clean', 'adversarial'],
      rules: ['any', 'all'],
      tolerances: [0.01, 0.05, 0.1],
    });
    expect(cells).toHaveLength(12);
    expect(new Set(cells.map((c) => `${c.score}/${c.rule}/${c.tolerance}`)).size).toBe(12);
  });
});

describe('npm run reproduce -- --sensitivity', () => {
  it('runs the first setting per seed and forks it for the others, writing the table', async () => {
    const dir = tempRuns('sensitivity');
    const file = writeTinySystem(dir, 'tiny', {
      dataset: { name: 'mnist', trainSize: 150, validationSize: 40, testSize: 60 },
      tracking: { mlflow: { enabled: false } },
    });
    const lines: string[] = [];
    const result = await sensitivity({
      recipe: file,
      seeds: [0, 1],
      grid: { scores: ['adversarial'], rules: ['any'], tolerances: [0, 1e9] },
      outDir: dir,
      log: (l) => lines.push(l),
      progress: silent,
    });
    expect(result.status).toBe('finished');
    const study = JSON.parse(fs.readFileSync(path.join(result.dir, 'sensitivity.json'), 'utf8'));
    expect(study.runs).toHaveLength(4);
    const forked = study.runs.map((r: { dir: string }) =>
      Boolean(
        JSON.parse(fs.readFileSync(path.join(result.dir, r.dir, RUN_FILES.info), 'utf8'))
          .forkedFrom,
      ),
    );
    expect(forked).toEqual([false, true, false, true]);
    expect(study.summaries.map((s: { tolerance: number }) => s.tolerance)).toEqual([0, 1e9]);
    // nothing frozen at τ = 1e9: selective equals normal on every seed
    expect(study.summaries[1].frozenAtEnd).toBe(0);
    expect(study.summaries[1].gains.selective.fgsm.mean).toBe(0);
    const md = fs.readFileSync(path.join(result.dir, 'sensitivity.md'), 'utf8');
    expect(md).toContain('| adversarial | any | 1000000000 | 0.0 |');
    expect(md).toMatch(/Selective − random-freeze on FGSM, 2 settings at n = 2 seeds each/);
    expect(study.summaries[1].allFragile).toEqual({ skipped: 0, refreshes: 2 });
    // rewriting the study from its runs gives the same table
    expect(summarizeStudy(result.dir)).toBe(md);

    const errors: string[] = [];
    const error = jest.spyOn(console, 'error').mockImplementation((m) => errors.push(String(m)));
    try {
      expect(await sensitivityMain(['--recipes', file, '--tolerances', 'x'])).toBe(2);
      expect(await sensitivityMain(['--recipes', file, '--rules', 'some'])).toBe(2);
    } finally {
      error.mockRestore();
    }
    expect(errors[0]).toContain("--tolerances: expected numbers ≥ 0; got 'x'");
    expect(errors[1]).toContain("--rules: expected a list of any, all; got 'some'");
  });
});
