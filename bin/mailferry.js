#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=262144 node --max-semi-space-size=1 --heap-growing-percent=30
// The #! line bounds memory (docs/performance.md): V8's young generation semi-spaces at 1 MiB
// instead of 16 MiB, and its old generation grown by at most 30% between full collections (V8
// picks up to 4x on its own), so that dead message Buffers are collected before they pile up;
// glibc malloc with two arenas instead of one per thread, and buffers over 256 KB mapped and
// unmapped on their own, so that freed message buffers go back to the system.
// It applies when the bin is run as a program (npm's bin link, npx, cron); `node bin/mailferry.js`
// ignores it and runs the same, with a larger footprint.
import { run } from '../dist/src/main.js';
run();
