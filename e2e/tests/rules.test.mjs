// Detection rules in a real browser against a real Ward: a detection engineer
// writes a rule (and sees inline validation errors), adds tests, runs them,
// submits; their own approval is refused; a second engineer approves it from
// the review queue.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWard, PASSWORD } from "../lib/ward.mjs";
import { launch, context, newPage, screenshot, signIn } from "../lib/browser.mjs";

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
  assert.deepEqual(problems, [], "console shows CSP violations or script errors");
});

async function freshPage() {
  const ctx = await context(browser);
  contexts.push(ctx);
  return newPage(ctx);
}

const RULE = `title: Whoami from the browser
id: 5d1f4a7e-1111-4222-8333-444455556666
status: test
description: whoami run, written in Ward's editor
author: e2e
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
level: low
tags:
    - attack.discovery
    - attack.t1033
`;

const TESTS = JSON.stringify({
  tests: [
    { name: "whoami is caught", expect: "match", event: { Image: "C:\\Windows\\System32\\whoami.exe" } },
    { name: "notepad is not", expect: "no_match", event: { Image: "C:\\Windows\\notepad.exe" } },
  ],
});

/// Posts a same-origin form from the page, as a hand-made form would.
async function postForm(page, action, fields) {
  await page.evaluate(([action, fields]) => {
    const f = document.createElement("form");
    f.method = "post";
    f.action = action;
    for (const [k, v] of Object.entries(fields)) {
      const i = document.createElement("input");
      i.type = "hidden";
      i.name = k;
      i.value = v;
      f.appendChild(i);
    }
    document.body.appendChild(f);
    f.submit();
  }, [action, fields]);
  await page.waitForLoadState("load");
}

test("write, test and submit a rule; the author cannot approve; a colleague does", async () => {
  const page = await freshPage();
  await signIn(page, ward.url, "user@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  await page.getByRole("link", { name: "Rules" }).click();
  await page.getByRole("link", { name: "New rule" }).click();

  // An invalid rule stays in the editor with its error and position.
  await page.getByLabel("Sigma YAML").fill(RULE.replace("endswith", "endswitch"));
  await page.getByRole("button", { name: "Save" }).click();
  const alert = await page.getByRole("alert").innerText();
  assert.match(alert, /not valid Sigma/);
  assert.match(alert, /line 11/, alert);
  assert.match(await page.getByLabel("Sigma YAML").inputValue(), /endswitch/, "the text is kept");
  await screenshot(page, "rule-invalid");

  await page.getByLabel("Sigma YAML").fill(RULE);
  await page.getByLabel("Change note").fill("first draft");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/\/rules\/[^/]+$/);
  assert.match(await page.getByRole("status").innerText(), /Rule created/);
  const ruleUrl = page.url();

  await page.getByLabel(/Test cases/).fill(TESTS);
  await page.getByRole("button", { name: "Save tests" }).click();
  assert.match(await page.getByRole("status").innerText(), /Tests saved/);
  await page.getByRole("button", { name: "Run tests" }).click();
  assert.match(await page.getByRole("status").innerText(), /2 passed, 0 failed/);
  assert.equal(await page.getByRole("cell", { name: "pass", exact: true }).count(), 2);
  await screenshot(page, "rule-editor");

  await page.getByRole("button", { name: "Submit for review" }).click();
  assert.match(await page.getByRole("status").innerText(), /Submitted for review/);
  await page.getByRole("link", { name: "Review", exact: true }).click();
  assert.match(await page.locator("main").innerText(), /You cannot act on this review/);
  assert.equal(await page.getByRole("button", { name: /Approve/ }).count(), 0);

  // The author's own approval, posted by hand, is refused with the reason.
  const reviewUrl = page.url();
  await postForm(page, reviewUrl.replace(/\/review$/, "/approve"), { version: "1" });
  assert.match(await page.getByRole("alert").innerText(), /separation of duties/);
  assert.match(await page.locator("main").innerText(), /in_review/);

  // A colleague approves from the review queue.
  const other = await freshPage();
  await signIn(other, ward.url, "analyst@acme.example", PASSWORD);
  await other.waitForURL(/\/account$/);
  await other.getByRole("link", { name: "Reviews" }).click();
  assert.match(await other.locator("main").innerText(), /may review/);
  await screenshot(other, "review-queue");
  await other.getByRole("link", { name: "Whoami from the browser" }).click();
  assert.match(await other.locator("main").innerText(), /\+title: Whoami from the browser/, "the diff shows the rule");
  assert.match(await other.locator("main").innerText(), /2 passed, 0 failed/);
  await screenshot(other, "review-page");
  await other.getByRole("button", { name: "Approve version 1" }).click();
  assert.match(await other.getByRole("status").innerText(), /Approved/);

  await page.goto(ruleUrl);
  assert.match(await page.locator("main").innerText(), /approved · version 1 · approved version 1/);
  await page.goto(`${ward.url}/rules?status=approved`);
  assert.equal(await page.getByRole("link", { name: "Whoami from the browser" }).count(), 1);
  await screenshot(page, "rules-list");
});

test("a Viewer reads rules but has no editor", async () => {
  const page = await freshPage();
  await signIn(page, ward.url, "viewer@acme.example", PASSWORD);
  await page.waitForURL(/\/account$/);
  await page.goto(`${ward.url}/rules`);
  assert.equal(await page.getByRole("link", { name: "New rule" }).count(), 0);
  const r = await page.goto(`${ward.url}/rules/new`);
  assert.equal(r.status(), 403);
});
