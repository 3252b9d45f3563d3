#!/usr/bin/env -S node --max-semi-space-size=1
// tspire-agent: SPIRE-compatible agent CLI (built into dist/ by `npm run build`).
import process from 'node:process';
import { main } from '../dist/identity-core/cli/agent-cli.js';

process.exitCode = await main(process.argv.slice(2));
