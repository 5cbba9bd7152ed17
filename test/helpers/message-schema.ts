import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import protobuf from 'protobufjs';

// The message types of Google's APIs as plain JSON schemas, so that a definition deploy.sh sends
// (alert policy, SLO, dashboard, log-based metric, ...) is checked field by field in its REST JSON
// form: an unknown (misspelt) field, a wrong type, an enum value that does not exist or two
// members of one oneof fail here, not at deployment. Sources: the protos that
// @google-cloud/monitoring ships (monitoring.v3), and, for the types it does not ship
// (monitoring.v1 dashboards, logging.v2 metrics), the messages google-cloud-sdk generates from
// Google's discovery documents (test/fixtures/*.schema.json, checked against the installed SDK
// where gcloud is installed).

/** One field of a message in its JSON form. */
export type FieldSpec = (
  | { readonly kind: 'string' | 'bytes' | 'boolean' | 'number' | 'integer' | 'duration' | 'any' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'message'; readonly type: string }
  | { readonly kind: 'map'; readonly value: FieldSpec }
) & { readonly repeated?: boolean };

/** A set of message types, each its fields by JSON name and its oneof groups. */
export interface MessageSchemas {
  readonly types: Readonly<
    Record<
      string,
      {
        readonly fields: Readonly<Record<string, FieldSpec>>;
        readonly oneofs?: readonly (readonly string[])[];
      }
    >
  >;
}

const require = createRequire(import.meta.url);

/** The monitoring.v3 protos that @google-cloud/monitoring ships. */
export function monitoringProtos(): protobuf.Root {
  const json = require('@google-cloud/monitoring/build/protos/protos.json') as protobuf.INamespace;
  return protobuf.Root.fromJSON(json);
}

const WELL_KNOWN: Readonly<Record<string, FieldSpec>> = {
  'google.protobuf.Duration': { kind: 'duration' },
  'google.protobuf.Timestamp': { kind: 'string' },
  'google.protobuf.FieldMask': { kind: 'string' },
  'google.protobuf.Struct': { kind: 'any' },
  'google.protobuf.Value': { kind: 'any' },
  'google.protobuf.ListValue': { kind: 'any' },
  'google.protobuf.Any': { kind: 'any' },
  'google.protobuf.DoubleValue': { kind: 'number' },
  'google.protobuf.FloatValue': { kind: 'number' },
  'google.protobuf.Int64Value': { kind: 'integer' },
  'google.protobuf.UInt64Value': { kind: 'integer' },
  'google.protobuf.Int32Value': { kind: 'integer' },
  'google.protobuf.UInt32Value': { kind: 'integer' },
  'google.protobuf.BoolValue': { kind: 'boolean' },
  'google.protobuf.StringValue': { kind: 'string' },
  'google.protobuf.BytesValue': { kind: 'bytes' },
};

const SCALARS: Readonly<Record<string, FieldSpec>> = {
  double: { kind: 'number' },
  float: { kind: 'number' },
  bool: { kind: 'boolean' },
  string: { kind: 'string' },
  bytes: { kind: 'bytes' },
};

/** The JSON schema of `root`'s message `fullName` and every message it reaches. */
export function protoSchemas(root: protobuf.Root, ...fullNames: string[]): MessageSchemas {
  const types: Record<string, { fields: Record<string, FieldSpec>; oneofs: string[][] }> = {};
  const specOf = (field: protobuf.Field): FieldSpec => {
    field.resolve();
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) {
      return { kind: 'enum', values: Object.keys(resolved.values) };
    }
    if (resolved instanceof protobuf.Type) {
      const name = resolved.fullName.replace(/^\./, '');
      const known = WELL_KNOWN[name];
      if (known) return known;
      visit(resolved);
      return { kind: 'message', type: name };
    }
    return SCALARS[field.type] ?? { kind: 'integer' };
  };
  const visit = (type: protobuf.Type) => {
    const name = type.fullName.replace(/^\./, '');
    if (types[name]) return;
    const entry = { fields: {} as Record<string, FieldSpec>, oneofs: [] as string[][] };
    types[name] = entry;
    for (const field of type.fieldsArray) {
      const spec = specOf(field);
      entry.fields[field.name] =
        field instanceof protobuf.MapField
          ? { kind: 'map', value: spec }
          : field.repeated
            ? { ...spec, repeated: true }
            : spec;
    }
    // Synthetic oneofs (proto3 `optional`) start with an underscore and hold one field.
    for (const oneof of type.oneofsArray) {
      if (!oneof.name.startsWith('_')) entry.oneofs.push(oneof.fieldsArray.map((f) => f.name));
    }
  };
  for (const fullName of fullNames) visit(root.lookupType(fullName));
  return { types };
}

/**
 * Checks `value` (REST JSON) against message `type` of `schemas`: every problem found, each with
 * its path (`conditions[0].conditionThreshold.filtr: unknown field`), or none.
 */
export function messageProblems(schemas: MessageSchemas, type: string, value: unknown): string[] {
  const problems: string[] = [];
  const check = (spec: FieldSpec, v: unknown, path: string) => {
    if (spec.repeated) {
      if (!Array.isArray(v)) {
        problems.push(`${path}: expected a list`);
        return;
      }
      const { repeated: _, ...one } = spec;
      v.forEach((item, i) => {
        check(one as FieldSpec, item, `${path}[${i}]`);
      });
      return;
    }
    switch (spec.kind) {
      case 'any':
        return;
      case 'string':
      case 'bytes':
        if (typeof v !== 'string') problems.push(`${path}: expected a string`);
        return;
      case 'duration':
        if (typeof v !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(v)) {
          problems.push(`${path}: expected a duration such as "60s"`);
        }
        return;
      case 'boolean':
        if (typeof v !== 'boolean') problems.push(`${path}: expected true or false`);
        return;
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v))
          problems.push(`${path}: expected a number`);
        return;
      case 'integer':
        if (!(Number.isInteger(v) || (typeof v === 'string' && /^-?\d+$/.test(v)))) {
          problems.push(`${path}: expected an integer`);
        }
        return;
      case 'enum':
        if (typeof v !== 'string' || !spec.values.includes(v)) {
          problems.push(`${path}: ${JSON.stringify(v)} is not one of ${spec.values.join(', ')}`);
        }
        return;
      case 'map':
        if (v === null || typeof v !== 'object' || Array.isArray(v)) {
          problems.push(`${path}: expected a map`);
          return;
        }
        for (const [k, item] of Object.entries(v)) check(spec.value, item, `${path}.${k}`);
        return;
      case 'message':
        message(spec.type, v, path);
        return;
    }
  };
  const message = (name: string, v: unknown, path: string) => {
    const type = schemas.types[name];
    if (!type) {
      problems.push(`${path}: no type ${name} in the schema`);
      return;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      problems.push(`${path || '(top)'}: expected an object (${name})`);
      return;
    }
    for (const [key, item] of Object.entries(v)) {
      const spec = type.fields[key];
      const at = path ? `${path}.${key}` : key;
      if (!spec) problems.push(`${at}: unknown field of ${name}`);
      else check(spec, item, at);
    }
    for (const group of type.oneofs ?? []) {
      const set = group.filter((f) => (v as Record<string, unknown>)[f] !== undefined);
      if (set.length > 1) problems.push(`${path || '(top)'}: ${set.join(' and ')} are one oneof`);
    }
  };
  message(type, value, '');
  return problems;
}

// Writes the message schemas of a google-cloud-sdk generated API module, from its apitools
// message classes (which the SDK generates from Google's discovery documents).
const SDK_SCHEMA = `
import json, sys, importlib
root = sys.argv[1]
sys.path[0:0] = [root + '/lib', root + '/lib/third_party']
from apitools.base.protorpclite import messages as pm
from apitools.base.py import extra_types
module = importlib.import_module(sys.argv[2])
types = {}
def name_of(cls):
    return cls.definition_name()
def spec(f):
    if isinstance(f, pm.MessageField):
        t = f.message_type
        if t in (extra_types.JsonValue, extra_types.JsonObject):
            return {'kind': 'any'}
        fields = list(t.all_fields())
        if [x.name for x in fields] == ['additionalProperties'] and fields[0].repeated:
            value = [x for x in fields[0].message_type.all_fields() if x.name == 'value'][0]
            return {'kind': 'map', 'value': spec(value)}
        visit(t)
        return {'kind': 'message', 'type': name_of(t)}
    if isinstance(f, pm.EnumField):
        return {'kind': 'enum', 'values': sorted(v.name for v in f.type)}
    if isinstance(f, pm.BooleanField): return {'kind': 'boolean'}
    if isinstance(f, pm.IntegerField): return {'kind': 'integer'}
    if isinstance(f, pm.FloatField): return {'kind': 'number'}
    if isinstance(f, pm.BytesField): return {'kind': 'bytes'}
    if isinstance(f, pm.StringField): return {'kind': 'string'}
    raise Exception('unknown field %r' % f)
def visit(cls):
    if name_of(cls) in types: return
    fields = {}
    types[name_of(cls)] = {'fields': fields}
    for f in cls.all_fields():
        s = spec(f)
        fields[f.name] = dict(s, repeated=True) if f.repeated else s
for root_type in sys.argv[3:]:
    visit(getattr(module, root_type))
print(json.dumps({'types': types}, sort_keys=True))
`;

/** The SDK directory of a `gcloud` binary and the Python that runs it. */
function sdkOf(gcloud: string): { sdk: string; python: string } {
  const sdk = join(
    spawnSync('readlink', ['-f', gcloud], { encoding: 'utf8' }).stdout.trim(),
    '../..',
  );
  const bundled = join(sdk, 'platform/bundledpythonunix/bin/python3');
  return { sdk, python: existsSync(bundled) ? bundled : 'python3' };
}

/** The message schemas of `module` (e.g. ...monitoring.v1.monitoring_v1_messages) in an installed SDK. */
export function sdkSchemas(gcloud: string, module: string, ...roots: string[]): MessageSchemas {
  const { sdk, python } = sdkOf(gcloud);
  const result = spawnSync(python, ['-c', SDK_SCHEMA, sdk, module, ...roots], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0)
    throw new Error(`reading ${module} failed: ${result.stderr.slice(0, 2000)}`);
  return JSON.parse(result.stdout) as MessageSchemas;
}

/** The version of the SDK a `gcloud` binary belongs to (its VERSION file). */
export function sdkVersion(gcloud: string): string {
  const file = join(sdkOf(gcloud).sdk, 'VERSION');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : 'unknown';
}
