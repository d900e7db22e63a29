import { boundRate, targetText } from '../bench/analysis';

/** The analysis bench's verdicts on issue 20's targets, from hand-made rows. */
describe('analysis bench targets', () => {
  it('meets ≤ 2× the FLOP bound and ≤ 0.5× the peer when the kernels allow it', () => {
    const text = targetText({
      oursSeconds: 1.5,
      boundSeconds: 1,
      kernelBoundSeconds: 1.2,
      peerSeconds: 4,
    });
    expect(text).toBe('≤ 2× bound: met (1.50×); ≤ 0.5× peer: met (0.375×)');
  });

  it('takes the kernel bound as the goal where the product kernels alone need more than 2× the FLOP bound', () => {
    const within = targetText({ oursSeconds: 5, boundSeconds: 1, kernelBoundSeconds: 6 });
    expect(within).toContain('≤ 2× bound: not met (5.00×)');
    expect(within).toContain('need 6.00 s = 6.00× the bound (> 2×: beyond them)');
    expect(within).toContain('goal = kernel bound: met (0.833×)');
    const over = targetText({ oursSeconds: 7, boundSeconds: 1, kernelBoundSeconds: 6 });
    expect(over).toContain('goal = kernel bound: not met (1.17×)');
  });

  it('takes the higher bound as the goal where 0.5× the peer is below it', () => {
    const text = targetText({
      oursSeconds: 7,
      boundSeconds: 1,
      kernelBoundSeconds: 6,
      peerSeconds: 10,
    });
    expect(text).toContain(
      '0.5× peer = 5.00 s < bound 6.00 s: beyond the bound, goal = bound: not met',
    );
  });

  it('bounds a row at the faster of the matmul rates measured before and after its runs', () => {
    expect(boundRate([250, 320])).toBe(320);
    expect(boundRate([310, 190])).toBe(310);
  });
});
