#!/usr/bin/env node
// solc-js facade: a `solc` executable that answers `--version` and `--standard-json`
// like the native compiler, so py-solc-x, ape-solidity and forge can use the
// WebAssembly compiler from npm (no native solc can be downloaded on these machines).
//
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths a,b] < input.json
//
// Imports are resolved like native solc: the path as given (absolute or relative to the
// working directory), then relative to --base-path, then to each --include-path.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..', '..');
const solc = require(require.resolve('solc', { paths: [projectRoot, __dirname] }));

function writeAll(fd, text) {
  // Synchronous write: process.stdout.write + exit truncates pipes at 64 KiB.
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
  }
}

function nativeVersion() {
  // solc-js reports "...Emscripten.clang"; tools parse "Version: X.Y.Z+commit.H..." only.
  return solc.version().replace('Emscripten.clang', 'Linux.g++');
}

function parseArgs(argv) {
  const opts = { basePath: null, includePaths: [], allowPaths: [], standardJson: false, version: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let val = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { val = a.slice(eq + 1); a = a.slice(0, eq); }
    const next = () => (val !== null ? val : argv[++i]);
    switch (a) {
      case '--version': opts.version = true; break;
      case '--standard-json': opts.standardJson = true; break;
      case '--base-path': opts.basePath = next(); break;
      case '--include-path': opts.includePaths.push(next()); break;
      case '--allow-paths': opts.allowPaths.push(...String(next()).split(',').filter(Boolean)); break;
      case '--help': case '-h': opts.help = true; break;
      case '--no-import-callback': break;
      default:
        // Ignore unknown flags (e.g. --pretty-json) that do not change standard-json semantics.
        break;
    }
  }
  return opts;
}

function readStdin() {
  const chunks = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.slice(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    writeAll(1, 'solc-js facade for gridcoop\nUsage: solc --version | solc --standard-json [--base-path P] [--include-path P] [--allow-paths A,B] < input.json\n');
    return 0;
  }
  if (opts.version) {
    writeAll(1, `solc, the solidity compiler commandline interface\nVersion: ${nativeVersion()}\n`);
    return 0;
  }
  if (!opts.standardJson) {
    writeAll(2, 'solc facade: only --version and --standard-json are supported\n');
    return 1;
  }
  const roots = [];
  roots.push(process.cwd());
  if (opts.basePath) roots.push(path.resolve(opts.basePath));
  for (const p of opts.includePaths) roots.push(path.resolve(p));
  function findImports(importPath) {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
    for (const c of candidates) {
      try {
        return { contents: fs.readFileSync(c, 'utf8') };
      } catch (e) { /* try next */ }
    }
    return { error: `File not found: ${importPath} (searched ${candidates.join(', ')})` };
  }
  const input = readStdin();
  const output = solc.compile(input, { import: findImports });
  writeAll(1, output);
  return 0;
}

process.exitCode = main();
