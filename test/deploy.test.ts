/**
 * deploy/: the Kubernetes manifests validate offline against Kubernetes' own schemas
 * (kubernetes-validate in .venv, `node scripts/setup.js --k8s`), strictly (no unknown fields),
 * at the oldest version where backoffLimitPerIndex is GA; the shard Job is Indexed and its
 * completions match --shards; a misspelt field is caught.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const VALIDATE = path.join(ROOT, '.venv', 'bin', 'kubernetes-validate');
const MANIFESTS = path.join(ROOT, 'deploy', 'k8s');
const K8S_VERSION = '1.33.0';

function validate(files: string[]) {
  if (!fs.existsSync(VALIDATE)) {
    throw new Error(`${VALIDATE} is missing: run \`node scripts/setup.js --k8s\` (npm test does)`);
  }
  return spawnSync(VALIDATE, ['--strict', '-k', K8S_VERSION, ...files], { encoding: 'utf8' });
}

describe('deploy/k8s manifests', () => {
  const files = fs
    .readdirSync(MANIFESTS)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(MANIFESTS, f));

  it('validate strictly against Kubernetes schemas', () => {
    expect(files.map((f) => path.basename(f)).sort()).toEqual([
      'analyze-shards.yaml',
      'merge.yaml',
      'reproduce-merge.yaml',
      'reproduce-shards.yaml',
      'secret.yaml',
    ]);
    const r = validate(files);
    expect(r.stdout + r.stderr).not.toContain('ERROR');
    expect(r.status).toBe(0);
  });

  it.each(['analyze-shards.yaml', 'reproduce-shards.yaml'])(
    'the shard Job of %s is Indexed, retries per index, and its completions equal --shards',
    (file) => {
      const text = fs.readFileSync(path.join(MANIFESTS, file), 'utf8');
      expect(text).toMatch(/^ {2}completionMode: Indexed$/m);
      expect(text).toMatch(/^ {2}backoffLimitPerIndex: \d+$/m);
      const completions = /^ {2}completions: (\d+)$/m.exec(text)?.[1];
      const shards = /- --shards\n\s+- ['"](\d+)['"]/.exec(text)?.[1];
      expect(shards).toBe(completions);
      expect(text).toContain('name: tfjs-antifragile-mlflow');
    },
  );

  it('the sweep merge reads the shard folders the sweep shards write, on the same volume', () => {
    const shards = fs.readFileSync(path.join(MANIFESTS, 'reproduce-shards.yaml'), 'utf8');
    const merge = fs.readFileSync(path.join(MANIFESTS, 'reproduce-merge.yaml'), 'utf8');
    const count = /- --shards\n\s+- ['"](\d+)['"]/.exec(shards)?.[1];
    const out = /- --out\n\s+- (\S+)/.exec(shards)?.[1];
    expect(merge).toContain(`merge ${out}/reproduce-shard-*-of-${count} --out`);
    const claim = /claimName: (\S+)/.exec(shards)?.[1];
    expect(claim).toBeDefined();
    expect(merge).toContain(`claimName: ${claim}`);
    expect(shards).toContain(`kind: PersistentVolumeClaim\nmetadata:\n  name: ${claim}`);
  });

  it('a misspelt field fails validation (the check can fail)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deploy-'));
    const bad = path.join(dir, 'bad.yaml');
    const text = fs.readFileSync(path.join(MANIFESTS, 'analyze-shards.yaml'), 'utf8');
    fs.writeFileSync(bad, text.replace('  backoffLimitPerIndex:', '  backoffLimitPerIndx:'));
    const r = validate([bad]);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain("'backoffLimitPerIndx' was unexpected");
  });
});
