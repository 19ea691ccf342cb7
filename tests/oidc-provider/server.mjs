// A real OpenID Connect provider (the `oidc-provider` package) for the sign-in tests.
//
// Started by the Rust tests: `node server.mjs` with PORT (0 picks a free one). Prints
// one line `READY <issuer>` when it listens, and exits when its stdin closes, so a
// test that dies cannot leave it running.
//
// The person at the provider is played by the test: the authorization request carries
// `login_hint=<account id>` and the interaction pages approve at once (login, then
// consent for whatever was asked), answering with the usual redirects. Clients:
//   shop      - our users subgraph signing people in (authorization code + PKCE);
//   store-app - a company's own app whose access tokens (JWT, for the resource
//               `urn:shop:api`, with realm_access.roles) our gateway must accept.
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const ACCOUNTS = {
  alice: { email: 'alice@idp.test', email_verified: true, name: 'Alice Example', roles: ['CUSTOMER'] },
  bob: { email: 'bob@idp.test', email_verified: false, name: 'Bob Example', roles: ['CUSTOMER'] },
  nomail: { name: 'No Mail', roles: ['CUSTOMER'] },
  supplier: { email: 'buyer@northwind.test', email_verified: true, name: 'Northwind Buyer', roles: ['SUPPLIER'] },
  taken: { email: 'taken@idp.test', email_verified: true, name: 'Taken Address', roles: ['CUSTOMER'] },
};

const RESOURCE = 'urn:shop:api';
const port = Number(process.env.PORT ?? 0);
const redirectUris = (process.env.REDIRECT_URIS ?? 'http://127.0.0.1:9/callback').split(',');
const audience = process.env.API_AUDIENCE ?? 'shop-api';

async function signingKeys() {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(rsa.privateKey);
  return { keys: [{ ...jwk, kid: 'test-rs256', alg: 'RS256', use: 'sig' }] };
}

function account(id) {
  const a = ACCOUNTS[id];
  if (!a) return undefined;
  return {
    accountId: id,
    async claims() {
      const claims = { sub: id, name: a.name };
      if (a.email) {
        claims.email = a.email;
        claims.email_verified = a.email_verified;
      }
      return claims;
    },
  };
}

const server = http.createServer();
server.listen(port, '127.0.0.1', async () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'shop',
        client_secret: 'shop-test-secret',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: 'store-app',
        client_secret: 'store-app-secret',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: await signingKeys(),
    cookies: { keys: ['shop-oidc-test-cookie-key'] },
    claims: { email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: (_ctx, id) => account(id),
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) => (client.clientId === 'store-app' ? RESOURCE : undefined),
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: 'shop catalog:write inventory:write',
            audience,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: (_ctx, token) => {
      const a = ACCOUNTS[token.accountId];
      return a ? { realm_access: { roles: a.roles } } : undefined;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
  });
  // Plain http on loopback: the provider must not insist on TLS.
  provider.proxy = true;
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const { prompt, params, session } = details;
      if (prompt.name === 'login') {
        const id = params.login_hint;
        if (!ACCOUNTS[id]) {
          res.statusCode = 400;
          return res.end(`unknown login_hint ${id}`);
        }
        return provider.interactionFinished(req, res, { login: { accountId: id } }, { mergeWithLastSubmission: false });
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err));
    }
  });

  process.stdout.write(`READY ${issuer}\n`);
});

// Notices go to stdout; a reader that went away must not end the provider.
process.stdout.on('error', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
