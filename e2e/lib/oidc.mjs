// A real OpenID provider for the browser suite: npm `oidc-provider` (a certified
// OP) on a loopback port, with one confidential client for Ward and a small
// interaction handler that signs in the test user named by `op.nextUser` and
// grants the requested scopes. `rotateKeys()` restarts it under the same issuer
// with a new signing key, as a provider rotating its keys would.
import { createServer } from "node:http";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import Provider from "oidc-provider";
import { freePort } from "./ward.mjs";

function signingKey() {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg: "RS256", use: "sig" };
}

export async function startProvider({ redirectUri, users }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const client = { id: "ward", secret: `secret-${randomUUID()}` };
  const op = { issuer, client, nextUser: null, server: null, provider: null, key: signingKey() };

  const build = () => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: client.id,
          client_secret: client.secret,
          redirect_uris: [redirectUri],
          grant_types: ["authorization_code"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_basic",
        },
      ],
      jwks: { keys: [op.key] },
      scopes: ["openid", "email", "profile", "groups"],
      claims: { email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
      features: { devInteractions: { enabled: false } },
      // Ward reads identity claims from the ID token (as Okta, Entra ID and Google
      // can be configured to send them), not from the UserInfo endpoint.
      conformIdTokenClaims: false,
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
      pkce: { required: () => true },
      cookies: { keys: [randomUUID()] },
      async findAccount(_ctx, id) {
        const u = users[id];
        if (!u) return undefined;
        return {
          accountId: id,
          async claims() {
            return { sub: id, email: u.email, email_verified: true, name: u.name, groups: u.groups };
          },
        };
      },
    });
    provider.proxy = false;
    return provider;
  };

  // The interaction handler: sign in `op.nextUser`, then grant what was asked.
  const interaction = async (req, res) => {
    const provider = op.provider;
    const details = await provider.interactionDetails(req, res);
    let result;
    if (details.prompt.name === "login") {
      result = { login: { accountId: op.nextUser } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  };

  const listen = async () => {
    op.provider = build();
    const callback = op.provider.callback();
    op.server = createServer((req, res) => {
      if (req.url.startsWith("/interaction/")) {
        interaction(req, res).catch((e) => {
          res.statusCode = 500;
          res.end(String(e));
        });
      } else {
        callback(req, res);
      }
    });
    await new Promise((ok) => op.server.listen(port, "127.0.0.1", ok));
  };
  const stop = () => new Promise((ok) => { op.server.closeAllConnections(); op.server.close(ok); });

  op.stop = stop;
  op.rotateKeys = async () => {
    await stop();
    op.key = signingKey();
    await listen();
  };
  await listen();
  return op;
}
