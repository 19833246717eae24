#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=262144 node --max-semi-space-size=1
// The #! line bounds memory (README "Performance"): V8's young generation at 2 x 4 MB instead of
// 2 x 16 MB; glibc malloc with two arenas instead of one per thread, and buffers over 256 KB
// mapped and unmapped on their own, so that freed message buffers go back to the system.
// It applies when the bin is run as a program (npm's bin link, npx, cron); `node bin/mailferry.js`
// ignores it and runs the same, with a larger footprint.
import { run } from '../dist/src/main.js';
run();
