// Single sign-on through a real OpenID provider (npm oidc-provider), in a real
// browser: an Admin configures the provider in the Security page; users sign in
// identifier-first and are provisioned just in time with roles from their groups;
// a second provider serves another domain; the provider rotates its signing key;
// a replayed callback, a foreign email domain and an unreachable provider are
// refused with a clear message.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWard, PASSWORD } from "../lib/ward.mjs";
import { startProvider } from "../lib/oidc.mjs";
import { launch, context, newPage, screenshot, signIn } from "../lib/browser.mjs";

let ward;
let browser;
let acme;
let partner;
const contexts = [];

const users = {
  sam: { email: "sam@acme.example", name: "Sam Lead", groups: ["soc", "soc-leads"] },
  rita: { email: "rita@acme.example", name: "Rita Analyst", groups: ["soc"] },
  fin: { email: "fin@acme.example", name: "Fin Ance", groups: ["finance"] },
  eve: { email: "eve@evil.example", name: "Eve", groups: ["soc-leads"] },
  pat: { email: "pat@partner.example", name: "Pat Partner", groups: ["partners"] },
};

before(async () => {
  ward = await startWard();
  browser = await launch();
  const redirectUri = `${ward.url}/sso/callback`;
  acme = await startProvider({ redirectUri, users });
  partner = await startProvider({ redirectUri, users });
});

after(async () => {
  const problems = contexts.flatMap((c) => c.problems);
  await browser?.close();
  await acme?.stop();
  await ward?.stop();
  assert.deepEqual(problems, [], "console shows CSP violations or script errors");
});

async function freshPage() {
  const ctx = await context(browser);
  contexts.push(ctx);
  return newPage(ctx);
}

async function addProvider(admin, { name, op, domains, mappings, defaultRole }) {
  await admin.goto(`${ward.url}/admin/security`);
  await admin.getByLabel("Name (shown to users)").fill(name);
  await admin.getByLabel("Issuer URL").fill(op.issuer);
  await admin.getByLabel("Client id").fill(op.client.id);
  await admin.getByLabel("Client secret").fill(op.client.secret);
  await admin.getByLabel("Scopes (besides openid)").fill("email profile groups");
  await admin.getByLabel(/Allowed email domains/).fill(domains);
  await admin.getByLabel(/Group → role/).fill(mappings);
  await admin.getByLabel("Role when no group matches").selectOption(defaultRole);
  await admin.getByLabel(/just-in-time provisioning/).check();
  await admin.getByRole("button", { name: "Add provider" }).click();
  assert.match(await admin.getByRole("status").innerText(), /Identity provider added/);
}

async function ssoSignIn(page, op, user, email) {
  op.nextUser = user;
  await page.goto(`${ward.url}/login`);
  await page.getByLabel("Single sign-on: your work email").fill(email);
  await page.getByRole("button", { name: "Continue with single sign-on" }).click();
  await page.getByRole("link", { name: /^Sign in with / }).first().click();
}

test("an Admin configures providers in the browser", async () => {
  const admin = await freshPage();
  await signIn(admin, ward.url, "admin@acme.example", PASSWORD);
  await admin.waitForURL(/\/account$/);
  await addProvider(admin, {
    name: "Acme IdP",
    op: acme,
    domains: "acme.example",
    mappings: "soc-leads=admin\nsoc=user",
    defaultRole: "none",
  });
  await addProvider(admin, {
    name: "Partner IdP",
    op: partner,
    domains: "partner.example",
    mappings: "",
    defaultRole: "viewer",
  });
  assert.ok(await admin.getByText(`${ward.url}/sso/callback`).first().isVisible(), "the redirect URI is shown");
  assert.doesNotMatch(await admin.content(), new RegExp(acme.client.secret), "the secret is never shown");
  await screenshot(admin, "admin-sso");
});

test("SSO sign-in provisions users with roles from their groups", async () => {
  const page = await freshPage();
  await ssoSignIn(page, acme, "sam", "sam@acme.example");
  await page.waitForURL(/\/account$/);
  assert.match(await page.locator("header").innerText(), /sam@acme\.example \(admin\)/);
  const row = page.getByRole("row").filter({ hasText: "this session" });
  assert.match(await row.innerText(), /oidc/);
  // SSO and API tokens coexist.
  await page.getByLabel("Token name").fill("automation");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.locator("#token-secret").innerText();
  const me = await fetch(`${ward.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert.equal(me.status, 200);
  await screenshot(page, "sso-signed-in");

  const rita = await freshPage();
  await ssoSignIn(rita, acme, "rita", "rita@acme.example");
  await rita.waitForURL(/\/account$/);
  assert.match(await rita.locator("header").innerText(), /rita@acme\.example \(user\)/);

  // No group maps to a role and there is no default: refused, nothing created.
  const fin = await freshPage();
  await ssoSignIn(fin, acme, "fin", "fin@acme.example");
  await fin.waitForURL(/\/login$/);
  assert.match(await fin.getByRole("alert").first().innerText(), /none of your groups is allowed/);
});

test("a second provider serves its own domain", async () => {
  const page = await freshPage();
  await ssoSignIn(page, partner, "pat", "pat@partner.example");
  await page.waitForURL(/\/account$/);
  assert.match(await page.locator("header").innerText(), /pat@partner\.example \(viewer\)/);
});

test("a rotated provider signing key is picked up at the next sign-in", async () => {
  await acme.rotateKeys();
  const page = await freshPage();
  await ssoSignIn(page, acme, "sam", "sam@acme.example");
  await page.waitForURL(/\/account$/);
});

test("replayed callbacks, foreign domains and unreachable providers are refused", async () => {
  const page = await freshPage();
  let callback;
  page.on("request", (r) => {
    if (r.url().includes("/sso/callback")) callback = r.url();
  });
  await ssoSignIn(page, acme, "rita", "rita@acme.example");
  await page.waitForURL(/\/account$/);
  await page.goto(callback);
  assert.match(page.url(), /\/login$/);
  assert.match(await page.getByRole("alert").first().innerText(), /expired or was already used/);

  // The IdP vouches for an email outside the provider's domains.
  const providers = await (await fetch(`${ward.url}/api/v1/sso/providers`, {
    headers: { authorization: `Bearer ${await adminToken()}` },
  })).json();
  const acmeId = providers.providers.find((p) => p.name === "Acme IdP").id;
  // (A new browser: the provider would otherwise reuse Rita's session.)
  const eve = await freshPage();
  acme.nextUser = "eve";
  await eve.goto(`${ward.url}/sso/${acmeId}`);
  await eve.waitForURL(/\/login$/);
  assert.match(await eve.getByRole("alert").first().innerText(), /email domain may not sign in/);

  // No provider for this domain.
  await page.getByLabel("Single sign-on: your work email").fill("someone@nowhere.example");
  await page.getByRole("button", { name: "Continue with single sign-on" }).click();
  assert.match(await page.getByRole("alert").first().innerText(), /not set up for this email domain/);

  // The provider is down. Ward caches discovery for five minutes, so a
  // provider that just went down is first noticed at the IdP itself; an Admin
  // saving the provider (here: turning it on again) drops the cache, and the
  // next sign-in finds it unreachable.
  await partner.stop();
  const login = await fetch(`${ward.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@acme.example", password: PASSWORD }),
  });
  const adminCookie = login.headers.get("set-cookie").split(";")[0];
  const partnerId = providers.providers.find((p) => p.name === "Partner IdP").id;
  const saved = await fetch(`${ward.url}/api/v1/sso/providers/${partnerId}`, {
    method: "PATCH",
    headers: { "content-type": "application/json", cookie: adminCookie },
    body: JSON.stringify({ enabled: true }),
  });
  assert.equal(saved.status, 200);
  await ssoSignIn(page, partner, "pat", "pat@partner.example");
  await page.waitForURL(/\/login$/);
  assert.match(await page.getByRole("alert").first().innerText(), /could not be reached/);
  await screenshot(page, "sso-unreachable");
});

let token;
async function adminToken() {
  if (token) return token;
  const r = await fetch(`${ward.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@acme.example", password: PASSWORD }),
  });
  const cookie = r.headers.get("set-cookie").split(";")[0];
  const t = await fetch(`${ward.url}/api/v1/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie },
    body: JSON.stringify({ name: "e2e" }),
  });
  token = (await t.json()).secret;
  return token;
}
