#!/usr/bin/env node
// tspire-server: SPIRE-compatible server CLI (built into dist/ by `npm run build`).
import process from 'node:process';
import { main } from '../dist/identity-core/cli/server-cli.js';

process.exitCode = await main(process.argv.slice(2));
