import { OAuth2Client } from 'google-auth-library';

/**
 * Client options that authenticate Google API calls with a fixed bearer token (for example
 * `gcloud auth print-access-token`) instead of Application Default Credentials; none when unset.
 */
export function accessTokenAuth(token: string | undefined): { authClient?: OAuth2Client } {
  if (!token) return {};
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: token });
  return { authClient };
}
