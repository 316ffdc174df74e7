// SPDX-License-Identifier: Apache-2.0
// A service using the Anthropic TypeScript SDK with claudegate's OAuth 2.0
// client credentials: the SDK's `credentials` option takes a token provider,
// caches what it returns and asks again before `expiresAt`. The provider
// trades the service's API key (client_id = key id, client_secret = the
// whole cgk_ key) for a short-lived access token at POST /oauth/token.
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.CLAUDEGATE_URL;
const clientId = process.env.CLAUDEGATE_CLIENT_ID;
const clientSecret = process.env.CLAUDEGATE_CLIENT_SECRET;
if (!baseURL || !clientId || !clientSecret) {
  console.error('set CLAUDEGATE_URL, CLAUDEGATE_CLIENT_ID and CLAUDEGATE_CLIENT_SECRET (claudegate issue --api-key --json)');
  process.exit(2);
}

let minted = 0;

// RFC 6749 §4.4: HTTP Basic with the form-encoded id and secret.
async function clientCredentials() {
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
  const response = await fetch(`${baseURL}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'claude:messages' }),
  });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`token endpoint: ${response.status} ${body.error}: ${body.error_description}`);
  }
  minted += 1;
  console.log(`token provider: minted access token ${minted} (expires_in ${body.expires_in}s, scope ${body.scope})`);
  return { token: body.access_token, expiresAt: Math.floor(Date.now() / 1000) + body.expires_in };
}

const client = new Anthropic({ baseURL, credentials: clientCredentials, maxRetries: 0 });

for (const prompt of ['first call', 'second call']) {
  const message = await client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 100,
    messages: [{ role: 'user', content: prompt }],
  });
  console.log(`messages.create (${prompt}) → ${message.id}, ${message.usage.output_tokens} output tokens`);
}
if (minted !== 1) {
  throw new Error(`expected the SDK to reuse the cached token, but the provider minted ${minted}`);
}
console.log('client-credentials SDK: one token served both calls');
