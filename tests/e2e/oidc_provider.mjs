// A certified OpenID provider (panva's oidc-provider, pinned in tests/e2e/npm.py) as the gateway's upstream in
// the OAuth tests. Its own development login and consent pages stand for the user: any login name signs in as that
// account, whose claims are its name and an email. One confidential client, the gateway, registered as a native
// application so that its loopback callback may be on any port (RFC 8252 section 7.3).
//
// usage: node oidc_provider.mjs MODULE_DIR CLIENT_ID CLIENT_SECRET
// Prints "issuer http://127.0.0.1:PORT" once it listens; stops on SIGTERM or when stdin closes.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [moduleDir, clientId, clientSecret] = process.argv.slice(2);
const { default: Provider } = await import(pathToFileURL(path.join(moduleDir, 'lib', 'index.js')).href);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/oauth/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name'] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.test`, email_verified: true, preferred_username: id, name: id };
        },
      };
    },
    cookies: { keys: ['oauth-tests-only'] },
  });
  server.on('request', provider.callback());
  process.stdout.write(`issuer ${issuer}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
