import { BigQuery } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';

/** A real BigQuery client pointed at the test server; the client insists on a token, so a fake one. */
export function bigQueryClientFor(emulator: { baseUrl: string; projectId: string }): BigQuery {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'fake' });
  return new BigQuery({
    projectId: emulator.projectId,
    apiEndpoint: emulator.baseUrl,
    authClient,
    retryOptions: { maxRetries: 2, maxRetryDelay: 0.05 },
  });
}
