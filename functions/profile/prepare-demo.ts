// `npm start` runs this before serving: it makes sure the demo data exists and prints curls.
import { fileURLToPath } from 'node:url';
import { ensureDemoData } from '../../shared/demo/write-demo-data.js';
import { loadProfileConfig } from './config.js';

const config = loadProfileConfig(process.env);
const port = process.env.PORT ?? '7000';
const uri = config.SNAPSHOT_URI;

if (!uri.startsWith('file:') || config.PROFILE_STORE !== 'embedded') {
  console.log(
    `Not creating demo data: SNAPSHOT_URI=${uri}, PROFILE_STORE=${config.PROFILE_STORE}.`,
  );
} else {
  const snapshotDir = uri.startsWith('file://') ? fileURLToPath(uri) : uri.slice('file:'.length);
  const { created, samples } = await ensureDemoData(
    { snapshotDir, profilesPath: config.EMBEDDED_PROFILES_PATH },
    config.ID_TYPES_JSON,
  );
  const base = `http://127.0.0.1:${port}`;
  console.log(
    [
      created ? `Demo data created in ${snapshotDir}.` : `Demo data found in ${snapshotDir}.`,
      'Try, once the server below is listening:',
      `  curl -i '${base}/?id=${samples.linked}'          # linked ids, resolved segments`,
      `  curl -i '${base}/?id=${samples.superNode}'   # linked ids capped (x-linked-ids-truncated)`,
      `  curl -i '${base}/?id=${samples.orphan}'          # profile with no mapping entry`,
      `  curl -i '${base}/health'`,
      '',
    ].join('\n'),
  );
}
