#!/usr/bin/env node
// spire-drill: the operator and CI command line (built into dist/ by `npm run build`).
import process from 'node:process';
import { main } from '../dist/cli/spire-drill.js';

process.exitCode = await main(process.argv.slice(2));
