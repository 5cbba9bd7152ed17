// Cloud Monitoring and Logging for deploy.sh tests: a small model of the resources deploy.sh
// manages (log-based metrics, alerting policies, dashboards, notification channels through
// gcloud; services, SLOs and uptime checks through the REST API with curl), kept in $STUB_STATE
// so that a second run of deploy.sh sees what the first one made. Like the APIs, it names what it
// creates, refuses to create what exists or to update what does not, and wants a dashboard's
// current etag for an update. The gcloud stub hands its monitoring commands here; `curl` (beside
// it) hands calls to monitoring.googleapis.com here and passes every other call to the real curl.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STATE = join(process.env.STUB_STATE ?? '.', 'monitoring');
const NUMBER = '123456789012';

function dir(kind) {
  const d = join(STATE, kind);
  mkdirSync(d, { recursive: true });
  return d;
}
const file = (kind, id) => join(dir(kind), `${encodeURIComponent(id)}.json`);
const read = (kind, id) =>
  existsSync(file(kind, id)) ? JSON.parse(readFileSync(file(kind, id), 'utf8')) : undefined;
const write = (kind, id, value) => writeFileSync(file(kind, id), JSON.stringify(value));
const remove = (kind, id) => rmSync(file(kind, id), { force: true });
const all = (kind) =>
  readdirSync(dir(kind))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir(kind), f), 'utf8')));
function nextId(kind) {
  const counter = join(dir(kind), '..', `${kind}.counter`);
  const n = existsSync(counter) ? Number(readFileSync(counter, 'utf8')) + 1 : 1;
  writeFileSync(counter, String(n));
  return String(n);
}
const fromFile = (path) => JSON.parse(readFileSync(path, 'utf8'));

function fail(message) {
  process.stderr.write(`ERROR: ${message}\n`);
  process.exit(1);
}

/** `gcloud ... (logging metrics | monitoring ...)`: prints what gcloud would, or fails like it. */
export function gcloud(args) {
  const flags = new Map();
  const words = [];
  for (const a of args) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (m) flags.set(m[1], m[2] ?? '');
    else words.push(a);
  }
  const project = flags.get('project') ?? 'demo-proj';
  const format = flags.get('format') ?? '';
  const out = (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  const at =
    words.indexOf('monitoring') >= 0 ? words.indexOf('monitoring') + 1 : words.indexOf('metrics');
  const group = words[0] === 'logging' ? 'metrics' : words[at];
  const verb = words[0] === 'logging' ? words[2] : words[at + 1];
  const target = words[0] === 'logging' ? words[3] : words[at + 2];
  const kind = {
    metrics: 'metrics',
    policies: 'policies',
    dashboards: 'dashboards',
    channels: 'channels',
  }[group];
  if (!kind) fail(`stub-monitoring: unsupported ${args.join(' ')}`);
  const key = (name) => name.split('/').pop();

  switch (verb) {
    case 'list': {
      let items = all(kind);
      const filter = flags.get('filter');
      if (filter) {
        const email = /labels\.email_address="([^"]*)"/.exec(filter)?.[1];
        const type = /type="([^"]*)"/.exec(filter)?.[1];
        items = items.filter(
          (c) => (!email || c.labels?.email_address === email) && (!type || c.type === type),
        );
      }
      if (format === 'value(name)') {
        for (const c of items) process.stdout.write(`${c.name}\n`);
      } else out(items);
      return;
    }
    case 'describe': {
      const found = read(kind, key(target));
      if (!found) fail(`NOT_FOUND: ${target}`);
      out(found);
      return;
    }
    case 'delete':
      if (!read(kind, key(target))) fail(`NOT_FOUND: ${target}`);
      remove(kind, key(target));
      return;
    case 'create': {
      if (kind === 'metrics') {
        if (read(kind, target)) fail(`ALREADY_EXISTS: metric ${target}`);
        const body = fromFile(flags.get('config-from-file'));
        const type = `logging.googleapis.com/user/${target}`;
        write(kind, target, {
          ...body,
          name: target,
          metricDescriptor: {
            ...body.metricDescriptor,
            name: `projects/${project}/metricDescriptors/${type}`,
            type,
          },
          createTime: new Date().toISOString(),
        });
        return;
      }
      const id = nextId(kind);
      let body;
      if (kind === 'channels') {
        const labels = (flag) =>
          Object.fromEntries(
            (flags.get(flag) ?? '')
              .split(',')
              .filter(Boolean)
              .map((kv) => kv.split('=')),
          );
        body = {
          type: flags.get('type'),
          displayName: flags.get('display-name'),
          labels: labels('channel-labels'),
          userLabels: labels('user-labels'),
        };
      } else {
        body = fromFile(flags.get(kind === 'policies' ? 'policy-from-file' : 'config-from-file'));
        if (kind === 'dashboards' && body.etag)
          fail('INVALID_ARGUMENT: etag must not be set on creation');
      }
      const prefix = {
        policies: 'alertPolicies',
        dashboards: 'dashboards',
        channels: 'notificationChannels',
      }[kind];
      const name = `projects/${kind === 'dashboards' ? NUMBER : project}/${prefix}/${id}`;
      const stored = { ...body, name, ...(kind === 'dashboards' ? { etag: `etag-${id}-1` } : {}) };
      write(kind, id, stored);
      if (format === 'value(name)') process.stdout.write(`${name}\n`);
      else process.stderr.write(`Created [${name}].\n`);
      return;
    }
    case 'update': {
      const id = key(target);
      const now = read(kind, id);
      if (!now) fail(`NOT_FOUND: ${target}`);
      if (kind === 'metrics') {
        const body = fromFile(flags.get('config-from-file'));
        write(kind, id, {
          ...now,
          ...body,
          metricDescriptor: { ...now.metricDescriptor, ...body.metricDescriptor },
        });
        return;
      }
      const body = fromFile(
        flags.get(kind === 'policies' ? 'policy-from-file' : 'config-from-file'),
      );
      if (kind === 'dashboards') {
        if (body.etag !== now.etag)
          fail(`ABORTED: etag ${body.etag} is not the dashboard's ${now.etag}`);
        const version = Number(now.etag.split('-').pop()) + 1;
        write(kind, id, { ...body, name: now.name, etag: `etag-${id}-${version}` });
        return;
      }
      write(kind, id, { ...body, name: now.name });
      return;
    }
  }
  fail(`stub-monitoring: unsupported ${args.join(' ')}`);
}

/**
 * A REST call to https://monitoring.googleapis.com/v3/...: returns [status, body]. Services,
 * SLOs and uptime checks; names come back with the project number, as the API gives them.
 */
export function rest(method, url, body) {
  const u = new URL(url);
  const parts = u.pathname.replace(/^\/v3\//, '').split('/');
  const [, project] = parts;
  const path = parts.slice(2);
  const err = (code, message) => [code, { error: { code, message } }];
  if (path[0] === 'services' && path.length <= 2) {
    const id = path[1] ?? u.searchParams.get('serviceId');
    if (!id) return method === 'GET' ? [200, { services: all('services') }] : err(400, 'serviceId');
    return resource('services', id, `projects/${NUMBER}/services/${id}`);
  }
  if (path[0] === 'services' && path[2] === 'serviceLevelObjectives') {
    const service = path[1];
    if (!read('services', service)) return err(404, `service ${service} not found`);
    const id = path[3] ?? u.searchParams.get('serviceLevelObjectiveId');
    if (!id) {
      return [
        200,
        {
          serviceLevelObjectives: all('slos').filter((o) =>
            o.name.includes(`/services/${service}/`),
          ),
        },
      ];
    }
    return resource(
      'slos',
      `${service}.${id}`,
      `projects/${NUMBER}/services/${service}/serviceLevelObjectives/${id}`,
    );
  }
  if (path[0] === 'uptimeCheckConfigs') {
    if (path.length === 1 && method === 'GET') return [200, { uptimeCheckConfigs: all('uptime') }];
    const id =
      path[1] ??
      (method === 'POST'
        ? `${body?.displayName?.replace(/\W+/g, '-').toLowerCase()}-${nextId('uptime')}`
        : undefined);
    return resource('uptime', id, `projects/${project}/uptimeCheckConfigs/${id}`);
  }
  return err(404, `no such collection: ${u.pathname}`);

  function resource(kind, id, name) {
    const now = read(kind, id);
    switch (method) {
      case 'GET':
        return now ? [200, now] : err(404, `${name} not found`);
      case 'POST':
        if (now) return err(409, `${name} already exists`);
        write(kind, id, { ...body, name });
        return [200, read(kind, id)];
      case 'PATCH': {
        if (!now) return err(404, `${name} not found`);
        const mask = (u.searchParams.get('updateMask') ?? '').split(',').filter(Boolean);
        const next = { ...now };
        for (const field of mask) {
          if (body[field] === undefined) delete next[field];
          else next[field] = body[field];
        }
        write(kind, id, next);
        return [200, next];
      }
      case 'DELETE':
        if (!now) return err(404, `${name} not found`);
        remove(kind, id);
        return [200, {}];
    }
    return err(405, method);
  }
}

if (process.argv[2] === 'gcloud') gcloud(process.argv.slice(3));
