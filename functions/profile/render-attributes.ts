import type { ByteWriter } from '../../shared/byte-writer.js';
import { toJsonValue } from '../../shared/json-value.js';
import type { ProfileBins } from '../../shared/profiles/profile-store.js';

/**
 * Writes the attributes (every bin but the segments bin and `skip`) as JSON object members,
 * `"name":value,...` without the braces, straight from the bins into `out`: no intermediate
 * object or string, and a bin named `__proto__` is plain text. Returns how many it wrote.
 */
export function writeAttributeMembers(
  out: ByteWriter,
  bins: ProfileBins,
  segmentsBin: string,
  skip?: ReadonlySet<string>,
): number {
  let written = 0;
  const names = Object.keys(bins);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (name === segmentsBin || skip?.has(name)) continue;
    const quoted = quotedName(name);
    out.bytes(written++ === 0 ? quoted.first : quoted.next);
    writeJsonValue(out, bins[name]);
  }
  return written;
}

/** A bin name as a member name, `"name":`, and the same after a comma. */
interface QuotedName {
  readonly first: Buffer;
  readonly next: Buffer;
}

/** Bin names repeat on every record: each is quoted and encoded once (up to a bound). */
const QUOTED_NAMES = new Map<string, QuotedName>();
const MAX_QUOTED_NAMES = 4096;

function quotedName(name: string): QuotedName {
  let quoted = QUOTED_NAMES.get(name);
  if (quoted === undefined) {
    const next = Buffer.from(`,${JSON.stringify(name)}:`);
    quoted = { first: next.subarray(1), next };
    if (QUOTED_NAMES.size < MAX_QUOTED_NAMES) QUOTED_NAMES.set(name, quoted);
  }
  return quoted;
}

/** A bin value as JSON: scalars directly, anything else through toJsonValue. */
function writeJsonValue(out: ByteWriter, value: unknown): void {
  switch (typeof value) {
    case 'string':
      out.jsonString(value);
      return;
    case 'number':
      out.text(Number.isFinite(value) ? String(value) : JSON.stringify(String(value)));
      return;
    case 'boolean':
      out.text(value ? 'true' : 'false');
      return;
    default:
      out.text(JSON.stringify(toJsonValue(value)));
  }
}
