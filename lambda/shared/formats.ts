/**
 * String formats that more than one input check uses. They accept exactly what zod 4 accepted
 * before these checks moved to valibot, so no message or input valid then is refused now.
 * valibot's own `email()` refuses an apostrophe (o'brien@example.com), and its
 * `isoTimestamp()` accepts a space for the "T" and impossible dates such as February 30.
 */

/** An email address; zod 4's `z.email()` pattern. */
export const EMAIL =
  /^(?:[A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$/;

/**
 * An RFC 3339 time with seconds and a "Z" or ±hh:mm offset, on a real calendar date (leap
 * years included); zod 4's `z.iso.datetime({ offset: true })` pattern.
 */
export const ISO_DATETIME =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8])))T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** The value at `path` in `root`, or undefined where the path leaves the objects. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** A value as an error message shows what it received: JSON, or "(missing)". */
export function shown(value: unknown): string {
  return value === undefined ? '(missing)' : JSON.stringify(value);
}
