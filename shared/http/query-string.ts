/** A query string split into names and values, with every value kept for repeated names. */
export type QueryParameters = ReadonlyMap<string, readonly string[]>;

/**
 * Parses a raw query string strictly: `+` is a space, `%XX` must be valid UTF-8, and repeated
 * names keep all their values. Returns undefined for a broken percent-encoding. Nested or
 * array syntax (`id[]=`, `id[a]=`) has no meaning here: those are just other names.
 */
export function parseQueryString(raw: string): QueryParameters | undefined {
  const params = new Map<string, string[]>();
  if (raw === '') return params;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq));
    const value = decode(eq < 0 ? '' : part.slice(eq + 1));
    if (name === undefined || value === undefined) return undefined;
    const values = params.get(name);
    if (values) values.push(value);
    else params.set(name, [value]);
  }
  return params;
}

function decode(text: string): string | undefined {
  // Most parameters need no decoding: skip the copies of replaceAll and decodeURIComponent.
  if (text.indexOf('%') < 0 && text.indexOf('+') < 0) return text;
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}
