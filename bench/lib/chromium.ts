import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (`CHROMIUM_PATH` overrides), headless, as the browser benches drive it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
}
