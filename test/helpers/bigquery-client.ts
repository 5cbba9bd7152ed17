import { BigQuery } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';

/** A real BigQuery client pointed at the test server; the client insists on a token, so a fake one. */
export function bigQueryClientFor(emulator: BigQueryEmulator): BigQuery {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'fake' });
  return new BigQuery({
    projectId: emulator.projectId,
    apiEndpoint: emulator.baseUrl,
    authClient,
    retryOptions: { maxRetries: 2, maxRetryDelay: 0.05 },
  });
}
