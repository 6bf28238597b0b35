// The peer of `make bench`: panva's oidc-provider (pinned in package.json), in production mode
// with its in-memory adapter, configured like Caducée's bench setup: the same clients
// (client_secret_basic), client_credentials and authorization_code, JWT access tokens for the
// resource server signed with PEER_ALG (RS256 or ES256), ID tokens RS256 (rp-rs) or ES256 (rp-es),
// and the same two with refresh tokens (rp-rs-refresh, rp-es-refresh: issued with every code
// exchange, rotated at each refresh, as Caducée does).
//
// oidc-provider ships no login pages for production (its devInteractions are for development),
// so what a login would produce is made in process, before the measures, by a bench-only route:
//   GET /__bench/codes?client=rp-rs&n=1000  -> JSON array of fresh authorization codes
//   GET /__bench/token                      -> JSON {"access_token": opaque token for userinfo}
// Only the protocol endpoints (discovery, JWKS, token, userinfo, introspection) are measured.
//
// Usage: PORT=8081 PEER_ALG=ES256 CLIENT_SECRET=... node oidc-provider.mjs

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

// Its in-memory adapter keeps at most 1,000 entries (an LRU): the codes prepared for a measure
// (thousands) and the grants they name would be evicted before use, and requests then fail
// ("grant not found"). The same adapter, over a store with room for everything a run makes.
const store = new LRU({ maxSize: 10_000_000 });
const adapter = (model) => new MemoryAdapter(model, store);

const port = Number(process.env.PORT || 8081);
const alg = process.env.PEER_ALG || 'ES256';
const secret = process.env.CLIENT_SECRET || 'bench-secret-bench-secret-bench-secret';
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = 'http://127.0.0.1:9/cb';
// PKCE verifier shared with the load generator (RFC 7636 appendix B).
const codeChallenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function jwk(type, options, keyAlg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const key = privateKey.export({ format: 'jwk' });
  return { ...key, alg: keyAlg, use: 'sig', kid: `${keyAlg}-${randomBytes(4).toString('hex')}` };
}

const jwks = {
  keys: [
    jwk('rsa', { modulusLength: 2048 }, 'RS256'),
    jwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

const rp = (id, idAlg, grants = ['authorization_code']) => ({
  client_id: id,
  client_secret: secret,
  client_name: id,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: grants,
  response_types: ['code'],
  redirect_uris: [redirectUri],
  id_token_signed_response_alg: idAlg,
  scope: 'openid',
});

const provider = new Provider(issuer, {
  adapter,
  clients: [
    {
      client_id: 'bench-cc',
      client_secret: secret,
      client_name: 'bench-cc',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'api',
    },
    rp('rp-rs', 'RS256'),
    rp('rp-es', 'ES256'),
    // With refresh tokens, as Caducée registers clients by default.
    rp('rp-rs-refresh', 'RS256', ['authorization_code', 'refresh_token']),
    rp('rp-es-refresh', 'ES256', ['authorization_code', 'refresh_token']),
  ],
  jwks,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'api'],
  claims: { openid: ['sub'] },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Client credentials get a JWT for the API; the login flows keep an opaque token for
      // userinfo, as Caducée's userinfo accepts its own access tokens.
      defaultResource: (ctx, client) => (client.clientId === 'bench-cc' ? 'urn:bench:api' : undefined),
      useGrantedResource: () => false,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: 'urn:bench:api',
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
  pkce: { required: () => true },
  // Like Caducée: a refresh token for every client allowed the grant (not only with
  // offline_access), used once and replaced at each refresh.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
});

async function grantFor(clientId) {
  const grant = new provider.Grant({ accountId: 'bench-user', clientId });
  grant.addOIDCScope('openid');
  return grant.save();
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__bench/codes') {
    const clientId = ctx.query.client || 'rp-rs';
    const n = Math.min(Number(ctx.query.n || 1), 200000);
    const client = await provider.Client.find(clientId);
    // A grant per code, as a login makes: the adapter walks a grant's whole member list at
    // every token it saves, so one grant for thousands of codes would slow every exchange.
    const authTime = Math.floor(Date.now() / 1000);
    const codes = [];
    for (let i = 0; i < n; i += 1) {
      const grantId = await grantFor(clientId);
      codes.push(await new provider.AuthorizationCode({
        accountId: 'bench-user',
        client,
        grantId,
        scope: 'openid',
        redirectUri,
        codeChallenge,
        codeChallengeMethod: 'S256',
        authTime,
        nonce: 'n',
        expiresWithSession: false,
      }).save());
    }
    ctx.body = codes;
    return;
  }
  if (ctx.path === '/__bench/token') {
    const client = await provider.Client.find('rp-rs');
    const grantId = await grantFor('rp-rs');
    const token = await new provider.AccessToken({
      accountId: 'bench-user',
      client,
      grantId,
      scope: 'openid',
      expiresWithSession: false,
    }).save();
    ctx.body = { access_token: token };
    return;
  }
  await next();
});

if (process.env.PEER_DEBUG) {
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_detail));
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${alg} listening on ${issuer}`);
});
