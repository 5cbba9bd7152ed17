import type { Segment } from '../catalog/segment.js';
import type { MappingPerson } from '../mapping/mapping-codec.js';
import type { EmbeddedProfileRecord } from '../profiles/embedded-profile-store.js';
import { SeededRandom } from './random.js';

/** Sizes of a generated dataset. */
export interface DemoDatasetOptions {
  readonly seed: number;
  readonly persons: number;
  readonly segments: number;
  /** Ids that have a profile but are absent from the mapping. */
  readonly orphanProfiles: number;
  /** Linked ids of one extra "super-node" person (a shared device), to show the fan-out cap. */
  readonly superNodeIds: number;
}

/** A generated dataset in the shapes the snapshots and the embedded store take. */
export interface DemoDataset {
  readonly segments: Segment[];
  readonly persons: MappingPerson[];
  readonly profiles: EmbeddedProfileRecord[];
  /** Ids worth trying, by what they show. */
  readonly samples: DemoSamples;
  /** The UTC date the data is dated from (YYYY-MM-DD): attributes and expiries are relative to it. */
  readonly today: string;
  /** The expiry (epoch seconds) of map-form segments that have expired: a year before `today`. */
  readonly expiredAt: number;
}

/** Demo ids worth trying, with what each shows. */
export interface DemoSamples {
  /** A person with several linked ids, all with profiles. */
  readonly linked: string;
  /** A profile with no entry in the mapping. */
  readonly orphan: string;
  /** A member of the super-node person, whose linked ids are capped. */
  readonly superNode: string;
  /** A mapped id that has no profile of its own. */
  readonly noProfile: string;
}

export const DEFAULT_DEMO_OPTIONS: DemoDatasetOptions = {
  seed: 20_261_126,
  persons: 10_000,
  segments: 500,
  orphanProfiles: 500,
  superNodeIds: 120,
};

/** Segment ids from this base upward exist in the catalog; UNKNOWN_BASE upward do not. */
const SEGMENT_ID_BASE = 1000;
export const UNKNOWN_SEGMENT_BASE = 90_000;
const DAY_SECS = 86_400;
/** Map-form segments expire this long before the data's date (expired), or after it (live). */
const EXPIRED_DAYS_AGO = 365;
const EXPIRES_IN_DAYS = 3_650;

const TYPE_CODES = ['111111', '222222', '333333', '444444'] as const;
const SEGMENT_TYPES = ['behavioral', 'demographic', 'interest', 'lookalike', 'contextual'];
const TOPICS = [
  'auto',
  'travel',
  'finance',
  'sports',
  'fashion',
  'gaming',
  'food',
  'tech',
  'home',
  'health',
];
const COUNTRIES = ['FR', 'DE', 'ES', 'IT', 'GB', 'US', 'NL', 'BE'];
const DEVICES = ['mobile', 'desktop', 'tablet', 'ctv'];

/**
 * Builds a deterministic dataset (same options and day, same data) over the default four id
 * types, dated relative to `now`'s UTC date (never a fixed calendar date: the demo works on any
 * day): first-seen dates in the ten months before it, segment expiries a year before it or ten
 * years after it.
 */
export function generateDemoDataset(
  options: DemoDatasetOptions = DEFAULT_DEMO_OPTIONS,
  now: number = Date.now(),
): DemoDataset {
  const rng = new SeededRandom(options.seed);
  const midnight = Math.floor(now / 1000 / DAY_SECS) * DAY_SECS;
  const dates: DataDates = {
    midnight,
    expiredAt: midnight - EXPIRED_DAYS_AGO * DAY_SECS,
    expiresLater: midnight + EXPIRES_IN_DAYS * DAY_SECS,
  };
  const segments = makeSegments(rng, options.segments);
  const persons: MappingPerson[] = [];
  const profiles: EmbeddedProfileRecord[] = [];
  const withProfile = new Set<string>();
  let noProfile: string | undefined;
  let linked: string | undefined;

  const addProfile = (id: string, typeCode: string) => {
    profiles.push({ set: typeCode, key: id, bins: makeBins(rng, options.segments, dates) });
    withProfile.add(id);
  };

  for (let p = 0; p < options.persons; p++) {
    const person: { id: string; typeCode: string }[] = [];
    for (let n = rng.int(1, 4); n > 0; n--) {
      const typeCode = rng.pick(TYPE_CODES);
      person.push({ id: makeId(rng, typeCode), typeCode });
    }
    for (const { id, typeCode } of person) {
      // One mapped id in ten has no profile of its own.
      if (rng.chance(0.9)) addProfile(id, typeCode);
      else noProfile ??= id;
    }
    if (!linked && person.length >= 3 && person.every(({ id }) => withProfile.has(id))) {
      linked = person[0]?.id;
    }
    persons.push(person);
  }

  const superNode = Array.from({ length: options.superNodeIds + 1 }, (_, i) => {
    const typeCode = i === 0 ? '222222' : rng.pick(TYPE_CODES);
    return { id: makeId(rng, typeCode), typeCode };
  });
  for (const { id, typeCode } of superNode) addProfile(id, typeCode);
  persons.push(superNode);

  let orphan: string | undefined;
  for (let i = 0; i < options.orphanProfiles; i++) {
    const typeCode = rng.pick(TYPE_CODES);
    const id = makeId(rng, typeCode);
    addProfile(id, typeCode);
    orphan ??= id;
  }

  if (!linked || !orphan || !noProfile) throw new Error('demo dataset too small for its samples');
  const superNodeId = (superNode[0] as { id: string }).id;
  return {
    segments,
    persons,
    profiles,
    samples: { linked, orphan, superNode: superNodeId, noProfile },
    today: utcDate(midnight),
    expiredAt: dates.expiredAt,
  };
}

/** The data's day and the expiry stamps relative to it (epoch seconds). */
interface DataDates {
  readonly midnight: number;
  readonly expiredAt: number;
  readonly expiresLater: number;
}

function utcDate(epochSecs: number): string {
  return new Date(epochSecs * 1000).toISOString().slice(0, 10);
}

function makeSegments(rng: SeededRandom, count: number): Segment[] {
  return Array.from({ length: count }, (_, i) => {
    const topic = rng.pick(TOPICS);
    const type = rng.pick(SEGMENT_TYPES);
    return {
      id: String(SEGMENT_ID_BASE + i),
      name: `${topic}-${type}-${i}`,
      type,
      size: rng.int(1_000, 5_000_000),
      provider: rng.pick(['first-party', 'partner-a', 'partner-b']),
      cpm: Math.round(rng.next() * 300) / 100,
    };
  });
}

function makeBins(
  rng: SeededRandom,
  segmentCount: number,
  dates: DataDates,
): Record<string, unknown> {
  const n = rng.int(5, 100);
  const ids = new Set<number>();
  while (ids.size < n) {
    // About one reference in fifty points at a segment the catalog does not know.
    ids.add(
      rng.chance(0.02)
        ? UNKNOWN_SEGMENT_BASE + rng.int(0, 99)
        : SEGMENT_ID_BASE + rng.int(0, segmentCount - 1),
    );
  }
  let segments: unknown = [...ids];
  if (rng.chance(0.3)) {
    // Map form: segment id -> expiry; some already expired, some never (0).
    const { expiredAt, expiresLater } = dates;
    const map: Record<string, number> = {};
    for (const id of ids) map[String(id)] = rng.pick([expiredAt, expiresLater, expiresLater, 0]);
    segments = map;
  }
  return {
    segments,
    country: rng.pick(COUNTRIES),
    device: rng.pick(DEVICES),
    // Two draws, as when this was a month and a day: the same seed keeps giving the same ids.
    first_seen: utcDate(dates.midnight - (rng.int(1, 10) * 30 + rng.int(1, 28)) * DAY_SECS),
    score: Math.round(rng.next() * 1000) / 1000,
  };
}

/** An id in the default syntax of each original type. */
export function makeId(rng: SeededRandom, typeCode: string): string {
  switch (typeCode) {
    case '111111':
      return [rng.hex(7), rng.hex(4), rng.hex(4), rng.hex(4), rng.hex(10)].join('-').toUpperCase();
    case '222222':
      return [rng.hex(8), rng.hex(4), rng.hex(4), rng.hex(4), rng.hex(12)].join('-');
    case '333333':
      return rng.hex(64);
    default:
      return rng.digits(10);
  }
}
