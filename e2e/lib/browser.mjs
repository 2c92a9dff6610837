// Debian Chromium driven by playwright-core (never a downloaded browser), with
// the flags this closed network needs, a console watch for CSP violations, and
// Chrome's virtual WebAuthn authenticator for passkeys.
import { chromium } from "playwright-core";
import { join } from "node:path";
import { artifacts } from "./ward.mjs";

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/// A new browser context whose pages record console errors and CSP reports.
export async function context(browser) {
  const ctx = await browser.newContext();
  ctx.problems = [];
  ctx.on("page", (page) => watch(ctx, page));
  return ctx;
}

function watch(ctx, page) {
  page.on("console", (m) => {
    const text = m.text();
    if (m.type() === "error" && /Content.Security.Policy|Refused to (execute|apply|load)/i.test(text)) {
      ctx.problems.push(text);
    }
  });
  page.on("pageerror", (e) => ctx.problems.push(`page error: ${e.message}`));
}

export async function newPage(ctx) {
  const page = await ctx.newPage();
  return page;
}

/// A virtual platform authenticator (CTAP2, internal, resident keys, user
/// verification) on this page's browser context.
export async function virtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

export async function signIn(page, base, email, password) {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}
