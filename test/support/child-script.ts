/**
 * The first lines of a plain-Node script that a test runs as a child process: they let it
 * `require` the project's TypeScript sources directly (transpiled on load, no type check).
 */
export const REQUIRE_TYPESCRIPT = `
const fs = require('fs');
const ts = require('typescript');
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(out.outputText, filename);
};
`;
