import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime, type ProfileRuntime } from '../../functions/profile/runtime.js';
import { catalogCodec } from '../../shared/catalog/catalog-codec.js';
import { DEFAULT_ID_TYPE_SPECS } from '../../shared/id-types.js';
import { silentLogger } from '../../shared/logger.js';
import { mappingCodec } from '../../shared/mapping/mapping-codec.js';
import { LocalSnapshotStore } from '../../shared/snapshots/local-snapshot-store.js';
import { publishSnapshot } from '../../shared/snapshots/publish-snapshot.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { httpEvent, resultJson } from '../helpers/http-event.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// Aerospike digests cover the key's type: a record written with the integer key 9876543210 is
// not found with the string key "9876543210" (seen on a real server; the test server computes
// digests the same way). The id type registry says how each type's records are keyed.
const INTEGER_ID = '9876543210';
const STRING_ID = '9876543211';
const UUID = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

let aerospike: AerospikeEmulator;
let dir: string;
const runtimes: ProfileRuntime[] = [];

/** The profile function on the Aerospike test server, with id_type_4 keyed as `keyType`. */
function profileWith(keyType: 'string' | 'integer'): ProfileRuntime {
  const specs = DEFAULT_ID_TYPE_SPECS.map((s) => (s.code === '444444' ? { ...s, keyType } : s));
  const runtime = createProfileRuntime(
    loadProfileConfig({
      SNAPSHOT_URI: `file:${dir}`,
      PROFILE_STORE: 'aerospike',
      AEROSPIKE_HOSTS: `${aerospike.host}:${aerospike.port}`,
      ID_TYPES_JSON: JSON.stringify(specs),
    }),
    silentLogger,
  );
  runtimes.push(runtime);
  return runtime;
}

async function get(runtime: ProfileRuntime, query: string) {
  const res = await runtime.handler(httpEvent(`/?${query}`), {});
  return { status: res.statusCode, body: resultJson(res) };
}

beforeAll(async () => {
  aerospike = await AerospikeEmulator.start();
  dir = await makeTempDir();
  const store = new LocalSnapshotStore(dir);
  await publishSnapshot(store, catalogCodec, Readable.from([{ id: '1', name: 'one' }]), {
    source: {},
    minRowsRatio: 0,
  });
  // The numeric id is linked to a UUID, so the answer also shows the key of a linked id.
  await publishSnapshot(
    store,
    mappingCodec(loadProfileConfig({}).ID_TYPES_JSON),
    Readable.from([
      [
        { id: UUID, typeCode: '222222' },
        { id: INTEGER_ID, typeCode: '444444' },
      ],
    ]),
    { source: {}, minRowsRatio: 0 },
  );
  await aerospike.put(
    'profiles',
    '444444',
    { type: 'integer', value: INTEGER_ID },
    {
      segments: [1],
      keyed: 'integer',
    },
  );
  await aerospike.put(
    'profiles',
    '444444',
    { type: 'string', value: STRING_ID },
    {
      segments: [1],
      keyed: 'string',
    },
  );
  await aerospike.put('profiles', '222222', { type: 'string', value: UUID }, { segments: [1] });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.deps.store.close()));
  await aerospike.close();
  await removeTempDir(dir);
});

describe('profile keys typed by the id type registry', () => {
  it('finds an integer-keyed record only when its type says integer', async () => {
    const integer = profileWith('integer');
    expect(await get(integer, `id=${INTEGER_ID}`)).toMatchObject({
      status: 200,
      body: { [INTEGER_ID]: { found: true, attributes: { keyed: 'integer' } } },
    });
    // Through the mapping too: the UUID's linked id is read with an integer key.
    expect(await get(integer, `id=${UUID}`)).toMatchObject({
      status: 200,
      body: { [UUID]: { found: true }, [INTEGER_ID]: { found: true } },
    });

    const string = profileWith('string');
    expect(await get(string, `id=${UUID}`)).toMatchObject({
      status: 200,
      body: { [INTEGER_ID]: { found: false } },
    });
  });

  it('finds a string-keyed record only when its type says string', async () => {
    expect(await get(profileWith('string'), `id=${STRING_ID}`)).toMatchObject({
      status: 200,
      body: { [STRING_ID]: { found: true, attributes: { keyed: 'string' } } },
    });
    expect((await get(profileWith('integer'), `id=${STRING_ID}`)).status).toBe(404);
  });

  it('answers 400 for an id of an integer type beyond a signed 64-bit integer', async () => {
    const res = await get(profileWith('integer'), 'id=99999999999999999999&type=id_type_4');
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'malformed_id' } } });
  });
});
