// Reading untrusted JSON (a parsed request body or upstream answer) for the translators: each
// helper checks one value's type and names its path (`messages[2].content[0].type`) when it is
// wrong, so a refusal tells the caller exactly which part to fix.

import { GatewayError } from '../errors/index.js';

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A 400 naming the path (`param`) of the part that cannot be used. */
export function invalid(path: string, message: string): GatewayError {
  return new GatewayError('invalid_request', message, { param: path });
}

/** Absent and JSON null both mean "not set" in both protocols. */
export function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

export function objectAt(value: unknown, path: string): Json {
  if (!isObject(value)) throw invalid(path, `"${path}" must be an object.`);
  return value;
}

export function arrayAt(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(path, `"${path}" must be an array.`);
  return value;
}

export function stringAt(value: unknown, path: string): string {
  if (typeof value !== 'string') throw invalid(path, `"${path}" must be a string.`);
  return value;
}

export function numberAt(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(path, `"${path}" must be a number.`);
  return value;
}

export function integerAt(value: unknown, path: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw invalid(path, `"${path}" must be an integer of at least ${min}.`);
  return value;
}

export function booleanAt(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw invalid(path, `"${path}" must be a boolean.`);
  return value;
}

/** `base` + `.key`, or just `key` at the top level. */
export function child(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/**
 * Refuses any key of `object` outside `known`: a field this translation does not know cannot be
 * carried over, and dropping it unannounced would change what the caller asked for.
 */
export function onlyKnownKeys(object: Json, known: ReadonlySet<string>, base: string, upstream: string): void {
  for (const key of Object.keys(object)) {
    if (!known.has(key)) {
      const path = child(base, key);
      throw invalid(path, `Field "${path}" cannot be sent to ${upstream}.`);
    }
  }
}

/** A non-negative token count from an upstream's usage, 0 when absent or malformed. */
export function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;
}
