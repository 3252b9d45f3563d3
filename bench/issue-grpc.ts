import { cpus } from 'node:os';
import { measureIssueRate } from './issue-rate.js';

/** X509-SVIDs per second through BatchNewX509SVID against tspire-server (see issue-rate.ts). Prints one JSON line. */
const rate = await measureIssueRate('tspire');
console.log(JSON.stringify({ bench: 'issue-grpc', ...rate, cores: cpus().length }));
