import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { patchBinding } = require('../scripts/setup/binding-patch') as {
  patchBinding: (dir: string) => void;
};

/** The setup's patch of tfjs-node's addon source (string and type list attributes). */
describe('binding patch (scripts/setup/binding-patch.js)', () => {
  const installed = path.join(
    path.dirname(require.resolve('@tensorflow/tfjs-node/package.json')),
    'binding',
    'tfjs_backend.cc',
  );

  function packageWith(source: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'binding-patch-'));
    fs.mkdirSync(path.join(dir, 'binding'));
    fs.writeFileSync(path.join(dir, 'binding', 'tfjs_backend.cc'), source);
    return dir;
  }

  it('patches the installed tfjs-node source for list attributes, and a second run changes nothing', () => {
    // The installed source is patched when our setup compiled the addon here, pristine when it
    // reused a cached addon: the patch must give the same text from either.
    const dir = packageWith(fs.readFileSync(installed, 'utf8'));
    const file = path.join(dir, 'binding', 'tfjs_backend.cc');
    patchBinding(dir);
    const once = fs.readFileSync(file, 'utf8');
    expect(once).toContain('TFE_OpSetAttrStringList');
    expect(once).toContain('TFE_OpSetAttrTypeList');
    patchBinding(dir);
    expect(fs.readFileSync(file, 'utf8')).toBe(once);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a source it was not written for, and leaves it untouched', () => {
    const dir = packageWith('// some other version of the binding\n');
    expect(() => patchBinding(dir)).toThrow(/not the tfjs-node source this patch was written for/);
    expect(fs.readFileSync(path.join(dir, 'binding', 'tfjs_backend.cc'), 'utf8')).toBe(
      '// some other version of the binding\n',
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
