import { writeMappingSnapshot } from './mapping-load-bench.js';

console.log(await writeMappingSnapshot(1_000_000));
