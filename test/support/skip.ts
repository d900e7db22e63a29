/**
 * Conditional tests that say why they are skipped: when `condition` is false the test (or
 * suite) is skipped with the reason in its name, which jest lists, and the reason is printed
 * once, so that a skipped test never passes silently.
 */

type Body = jest.ProvidesCallback;

function say(name: string, reason: string): string {
  process.stderr.write(`skipped: ${name}: ${reason}\n`);
  return `${name} [skipped: ${reason}]`;
}

/** `describe` when `condition` holds, else a skipped suite that names `reason`. */
export function describeIf(condition: boolean, reason: string) {
  return (name: string, body: () => void): void =>
    condition ? describe(name, body) : describe.skip(say(name, reason), body);
}

/** `it` when `condition` holds, else a skipped test that names `reason`. */
export function itIf(condition: boolean, reason: string) {
  return (name: string, body: Body, timeout?: number): void =>
    condition ? it(name, body, timeout) : it.skip(say(name, reason), body, timeout);
}
