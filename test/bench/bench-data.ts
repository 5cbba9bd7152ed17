import type { PersonRow } from '../helpers/mapping-result.js';

/** Ids per benchmark person: a shared device (type 1), a mobile id (type 2), an account (type 4). */
export const IDS_PER_PERSON = 3;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** The ids of benchmark person i, deterministic and valid for the default id types. */
export function benchPerson(i: number): PersonRow {
  return [
    [`${hex(i, 7)}-AAAA-BBBB-CCCC-${hex(i * 7, 10)}`.toUpperCase(), '111111'],
    [`${hex(i, 8)}-aaaa-4bbb-8ccc-${hex(i * 13, 12)}`, '222222'],
    [String(10_000_000_000 + i), '444444'],
  ];
}
