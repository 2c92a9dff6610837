// The web shell and sign-in, end to end in a real browser against a real Ward:
// password sign-in and sign-out, passkeys (passwordless and as a second factor
// under a require-MFA policy), navigation by role, CSP, CSRF, session revoke.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startWard, PASSWORD, freePort } from "../lib/ward.mjs";
import { launch, context, newPage, virtualAuthenticator, screenshot, signIn } from "../lib/browser.mjs";

let ward;
let browser;
const contexts = [];

before(async () => {
  ward = await startWard();
  browser = await launch();
});

after(async () => {
  const problems = contexts.flatMap((c) => c.problems);
  await browser?.close();
  await ward?.stop();
  // Every page visited in every test: no CSP violation, no script error.
  assert.deepEqual(problems, [], "console shows CSP violations or script errors");
});

async function freshPage() {
  const ctx = await context(browser);
  contexts.push(ctx);
  return newPage(ctx);
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
}

test("password sign-in and sign-out", async () => {
  const page = await freshPage();
  await page.goto(`${ward.url}/account`);
  assert.match(page.url(), /\/login$/, "a page needing a session sends the browser to sign in");
  await screenshot(page, "sign-in");

  await signIn(page, ward.url, "admin@acme.example", "wrong password here");
  await page.waitForURL(/\/login$/);
  assert.match(await page.getByRole("alert").first().innerText(), /email or password is incorrect/);

  await signIn(page, ward.url, "admin@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Account");
  await screenshot(page, "account");
  for (const link of ["Users", "Security", "Audit log"]) {
    assert.equal(await page.getByRole("link", { name: link }).count(), 1, `Admin sees ${link}`);
  }
  await page.getByRole("link", { name: "Users" }).click();
  await screenshot(page, "admin-users");
  await page.getByRole("link", { name: "Audit log" }).click();
  assert.ok(await page.getByText("auth.login").first().isVisible(), "the sign-in is in the audit viewer");
  await screenshot(page, "audit-log");

  await signOut(page);
  assert.match(await page.getByRole("status").innerText(), /signed out/);
  await page.goto(`${ward.url}/account`);
  assert.match(page.url(), /\/login$/, "the session ended server side");
});

test("a Viewer sees no admin navigation and is refused on direct URLs", async () => {
  const page = await freshPage();
  await signIn(page, ward.url, "viewer@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  assert.equal(await page.getByRole("link", { name: "Users" }).count(), 0);
  assert.equal(await page.getByRole("link", { name: "Security" }).count(), 0);
  assert.equal(await page.getByRole("link", { name: "Audit log" }).count(), 1, "auditors read the trail");
  const r = await page.goto(`${ward.url}/admin/users`);
  assert.equal(r.status(), 403);
  assert.match(await page.locator("h1").innerText(), /Forbidden/);
  assert.doesNotMatch(await page.content(), /admin@acme\.example/, "the 403 page leaks nothing");
  const missing = await page.goto(`${ward.url}/no/such/page`);
  assert.equal(missing.status(), 404);
  await screenshot(page, "error-403-404");
});

test("a cross-site form post is refused", async () => {
  const page = await freshPage();
  await signIn(page, ward.url, "user@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  // An attacker's page on another site (127.0.0.1 is not the same site as
  // localhost) that posts a form to Ward in the signed-in browser.
  const port = await freePort();
  const evil = createServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<form id="f" method="post" action="${ward.url}/account/tokens">
      <input name="name" value="planted"><input name="scope" value="user"></form>
      <script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((ok) => evil.listen(port, "127.0.0.1", ok));
  const attacked = await page.context().newPage();
  const answered = attacked.waitForResponse((r) => r.url().endsWith("/account/tokens"));
  await attacked.goto(`http://127.0.0.1:${port}/`);
  const r = await answered;
  assert.equal(r.status(), 403);
  await attacked.waitForLoadState();
  assert.match(await attacked.locator("h1").innerText(), /Forbidden/, "the browser gets an HTML error page");
  evil.close();
  await page.goto(`${ward.url}/account`);
  assert.equal(await page.getByText("planted").count(), 0, "no token was created");
  await attacked.close();
});

test("register a passkey, then sign in without a password", async () => {
  const page = await freshPage();
  await virtualAuthenticator(page);
  await signIn(page, ward.url, "user@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  await page.getByLabel("New passkey name").fill("virtual key");
  await page.getByRole("button", { name: "Register a passkey" }).click();
  await page.waitForURL(/registered=1/);
  assert.ok(await page.getByRole("cell", { name: "virtual key", exact: true }).isVisible());
  await screenshot(page, "account-passkeys");
  await signOut(page);

  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.waitForURL(/\/account$/);
  const row = page.getByRole("row").filter({ hasText: "this session" });
  assert.match(await row.innerText(), /passkey/);
  await signOut(page);
});

test("require MFA: password, then the passkey as second factor", async () => {
  const admin = await freshPage();
  await virtualAuthenticator(admin);
  await signIn(admin, ward.url, "admin@acme.example", PASSWORD);
  await admin.waitForURL(/\/account$/);
  // Turning MFA on from a password-only session would shut the Admin out: refused.
  await admin.goto(`${ward.url}/admin/security`);
  await admin.getByLabel(/Require MFA/).check();
  await admin.getByRole("button", { name: "Save policy" }).click();
  assert.match(await admin.getByRole("alert").innerText(), /register a passkey and confirm/);
  // Register a passkey and confirm with it; then the policy can be set.
  await admin.goto(`${ward.url}/account`);
  await admin.getByLabel("New passkey name").fill("admin key");
  await admin.getByRole("button", { name: "Register a passkey" }).click();
  await admin.waitForURL(/registered=1/);
  await admin.getByRole("button", { name: "Confirm with a passkey" }).click();
  await admin.waitForURL(/verified=1/);
  await admin.getByRole("link", { name: "Security" }).click();
  await admin.getByLabel(/Require MFA/).check();
  await admin.getByRole("button", { name: "Save policy" }).click();
  assert.equal(await admin.locator("#mfa-current").innerText(), "require_mfa");
  await screenshot(admin, "admin-security");

  // The Viewer has no passkey: signed in, but only to enroll.
  const viewer = await freshPage();
  const { cdp, authenticatorId } = await virtualAuthenticator(viewer);
  await signIn(viewer, ward.url, "viewer@acme.example", PASSWORD);
  await viewer.waitForURL(/\/account$/);
  assert.ok(await viewer.getByText("Multi-factor sign-in required").isVisible());
  const blocked = await viewer.goto(`${ward.url}/audit`);
  assert.equal(blocked.status(), 403);
  await viewer.goto(`${ward.url}/account`);
  await viewer.getByLabel("New passkey name").fill("viewer key");
  await viewer.getByRole("button", { name: "Register a passkey" }).click();
  await viewer.waitForURL(/registered=1/);
  await viewer.getByRole("button", { name: "Verify with my passkey" }).click();
  await viewer.waitForURL(/verified=1/);
  assert.equal(await viewer.getByText("Multi-factor sign-in required").count(), 0);
  assert.equal((await viewer.goto(`${ward.url}/audit`)).status(), 200);
  await signOut(viewer);

  // Next time: the password, then the passkey.
  await signIn(viewer, ward.url, "viewer@acme.example", PASSWORD);
  await viewer.getByRole("button", { name: "Use my passkey" }).click();
  await viewer.waitForURL(/\/account$/);
  const row = viewer.getByRole("row").filter({ hasText: "this session" });
  assert.match(await row.innerText(), /password\+passkey/);
  await signOut(viewer);

  // A cloned authenticator: the counter goes backwards, and the key is refused.
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1);
  await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: credentials[0].credentialId });
  await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...credentials[0], signCount: 0 } });
  await signIn(viewer, ward.url, "viewer@acme.example", PASSWORD);
  await viewer.getByRole("button", { name: "Use my passkey" }).click();
  await viewer.locator("#passkey-error").waitFor({ state: "visible" });
  assert.match(await viewer.locator("#passkey-error").innerText(), /cloned/);
  await screenshot(viewer, "passkey-refused");

  await admin.goto(`${ward.url}/admin/security`);
  await admin.getByLabel(/^None/).check();
  await admin.getByRole("button", { name: "Save policy" }).click();
  assert.equal(await admin.locator("#mfa-current").innerText(), "none");
});

test("revoking a session from the account page signs the other browser out", async () => {
  const first = await freshPage();
  const second = await freshPage();
  await signIn(first, ward.url, "analyst@acme.example", PASSWORD);
  await first.waitForURL(/\/account$/);
  await signIn(second, ward.url, "analyst@acme.example", PASSWORD);
  await second.waitForURL(/\/account$/);
  await first.reload();
  const others = first.locator("button[data-session]");
  const count = await others.count();
  assert.ok(count >= 1, "the other session is listed");
  for (let i = 0; i < count; i++) {
    await first.locator("button[data-session]").first().click();
    await first.waitForURL(/\/account$/);
  }
  await second.goto(`${ward.url}/account`);
  assert.match(second.url(), /\/login$/, "the revoked browser is signed out");
  await first.goto(`${ward.url}/account`);
  assert.match(first.url(), /\/account$/, "the revoking browser stays signed in");
});
