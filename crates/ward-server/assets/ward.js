// Ward's only script: the WebAuthn calls, which browsers offer to JavaScript
// alone. Everything else in the interface is plain HTML forms.
"use strict";

async function wardPost(url, body) {
  const resp = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    const detail = data && data.detail ? data.detail : "the request failed (" + resp.status + ")";
    throw new Error(detail);
  }
  return data;
}

function wardShowError(el, err) {
  const box = document.getElementById(el.getAttribute("data-error-box") || "passkey-error");
  if (box) {
    box.textContent = err && err.message ? err.message : String(err);
    box.hidden = false;
    box.focus();
  }
}

async function wardAssert(options) {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
  const cred = await navigator.credentials.get({ publicKey });
  return cred.toJSON();
}

function wardOn(selector, event, handler) {
  document.querySelectorAll(selector).forEach((el) => {
    el.addEventListener(event, async (ev) => {
      ev.preventDefault();
      el.setAttribute("aria-busy", "true");
      try { await handler(el); } catch (err) { wardShowError(el, err); }
      el.removeAttribute("aria-busy");
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  // Passwordless sign-in with a discoverable passkey.
  wardOn("[data-passkey-signin]", "click", async () => {
    const start = await wardPost("/api/v1/auth/passkey/start");
    const credential = await wardAssert(start.options);
    await wardPost("/api/v1/auth/passkey/finish", { credential });
    window.location.assign("/");
  });
  // The passkey step after a correct password.
  wardOn("[data-passkey-second-factor]", "click", async (el) => {
    const options = JSON.parse(el.getAttribute("data-options"));
    const credential = await wardAssert(options);
    await wardPost("/api/v1/auth/second-factor", { credential });
    window.location.assign("/");
  });
  // Registering a passkey on the account page.
  wardOn("form[data-passkey-register]", "submit", async (form) => {
    const name = form.querySelector("input[name=name]").value;
    const start = await wardPost("/api/v1/passkeys/registration");
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(start.options.publicKey);
    const cred = await navigator.credentials.create({ publicKey });
    await wardPost("/api/v1/passkeys", { name, credential: cred.toJSON() });
    window.location.assign("/account?registered=1");
  });
  // Re-authentication (and MFA verification) with a passkey.
  wardOn("[data-passkey-reauth]", "click", async () => {
    const start = await wardPost("/api/v1/auth/reauth/passkey/start");
    const credential = await wardAssert(start.options);
    await wardPost("/api/v1/auth/reauth/passkey/finish", { credential });
    window.location.assign("/account?verified=1");
  });
});
