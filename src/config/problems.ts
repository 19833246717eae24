import { MailferryError } from '../domain/errors.js';

/**
 * Every problem a loader finds, reported together (exit 2) before any I/O. This module imports
 * nothing of the config, auth or profiles code that uses it, so any of them may.
 */
export type Problems = string[];

/** Run a check that throws; its MailferryError message becomes one more problem. */
export function attempt<T>(problems: Problems, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e: unknown) {
    problems.push(e instanceof MailferryError ? e.message : String(e));
    return undefined;
  }
}
