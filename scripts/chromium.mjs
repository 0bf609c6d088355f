// Launches Debian's headless Chromium through playwright-core with the flags this machine
// needs as root (no sandbox, no background network). Shared by the bench and e2e tests.
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];

export function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}
