import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { ConfigError } from '../../shared/errors.js';

describe('loadProfileConfig', () => {
  it('has working defaults for the embedded demo', () => {
    const config = loadProfileConfig({});
    expect(config).toMatchObject({
      SNAPSHOT_URI: 'file:.data/demo/snapshots',
      PROFILE_STORE: 'embedded',
      LINKED_IDS_MAX: 50,
      MAX_ID_LENGTH: 128,
      REFRESH_INTERVAL_SECS: 60,
      LOG_USER_IDS: false,
    });
    expect(config.ID_TYPES_JSON.all.map((t) => [t.name, t.code])).toEqual([
      ['id_type_1', '111111'],
      ['id_type_2', '222222'],
      ['id_type_3', '333333'],
      ['id_type_4', '444444'],
    ]);
  });

  it('is frozen', () => {
    const config = loadProfileConfig({});
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ LINKED_IDS_MAX: '7' }, 'LINKED_IDS_MAX', 7],
    [{ LINKED_IDS_MAX: '' }, 'LINKED_IDS_MAX', 50],
    [{ LOG_USER_IDS: 'true' }, 'LOG_USER_IDS', true],
    [{ LOG_USER_IDS: '0' }, 'LOG_USER_IDS', false],
    [{ PROFILE_STORE: 'embedded' }, 'PROFILE_STORE', 'embedded'],
    [{ SNAPSHOT_URI: 'gs://my-bucket/profile-api' }, 'SNAPSHOT_URI', 'gs://my-bucket/profile-api'],
    [{ SNAPSHOT_URI: 'file:///tmp/snaps' }, 'SNAPSHOT_URI', 'file:///tmp/snaps'],
  ] as const)('%j sets %s', (env, name, expected) => {
    expect(loadProfileConfig(env)[name]).toEqual(expected);
  });

  it.each([
    [{ LINKED_IDS_MAX: '-1' }, 'LINKED_IDS_MAX'],
    [{ LINKED_IDS_MAX: 'many' }, 'LINKED_IDS_MAX'],
    [{ MAX_ID_LENGTH: '1.5' }, 'MAX_ID_LENGTH'],
    [{ PROFILE_STORE: 'redis' }, 'PROFILE_STORE'],
    [{ SNAPSHOT_URI: 's3://bucket' }, 'SNAPSHOT_URI'],
    [{ LOG_USER_IDS: 'maybe' }, 'LOG_USER_IDS'],
    [{ ID_TYPES_JSON: '{not json' }, 'ID_TYPES_JSON'],
    [{ ID_TYPES_JSON: '[]' }, 'ID_TYPES_JSON'],
    [{ ID_TYPES_JSON: '[{"name":"a","code":"1","pattern":"("}]' }, 'ID_TYPES_JSON'],
    [
      {
        ID_TYPES_JSON:
          '[{"name":"a","code":"1","pattern":"x"},{"name":"b","code":"1","pattern":"y"}]',
      },
      'ID_TYPES_JSON',
    ],
  ])('%j is refused, naming %s', (env, name) => {
    expect(() => loadProfileConfig(env)).toThrow(ConfigError);
    expect(() => loadProfileConfig(env)).toThrow(new RegExp(`^invalid configuration: ${name}: `));
  });

  it('takes id types from ID_TYPES_JSON', () => {
    const config = loadProfileConfig({
      ID_TYPES_JSON: JSON.stringify([
        { name: 'email_sha256', code: 'e1', pattern: '^[0-9a-f]{64}$', normalise: 'lower' },
      ]),
    });
    const registry = config.ID_TYPES_JSON;
    expect(registry.byName('email_sha256')?.code).toBe('e1');
    expect(registry.candidates('A'.repeat(64))).toEqual([
      { id: 'a'.repeat(64), type: registry.byCode('e1') },
    ]);
  });
});
