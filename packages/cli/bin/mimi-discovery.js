#!/usr/bin/env node
// The `mimi-discovery` command as npm links it into node_modules/.bin. npm links a bin only
// if its file exists when the package is installed, which is before the build: so the bin is
// this committed file, and it loads the built entry point, dist/main.js. Before a build it
// says so in one line (the command's error format, exit 2) instead of a stack trace.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const entry = new URL('../dist/main.js', import.meta.url);
if (existsSync(entry)) {
  await import(entry.href);
} else {
  process.stderr.write(
    'mimi-discovery: the command is not built: run npm run build first (ERR_CLI_NOT_BUILT)\n',
  );
  process.exitCode = 2;
}
