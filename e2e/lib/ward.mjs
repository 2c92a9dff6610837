// Starts a real Ward for the browser suite: its own data directory, SQLite or a
// fresh PostgreSQL database (E2E_DB=postgres), a company with an Admin, a
// User and a Viewer made by the operator CLI, served on http://localhost:PORT
// (WebAuthn needs a secure context; localhost is one).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";

export const PASSWORD = "correct horse battery staple";

const repo = resolve(new URL("../..", import.meta.url).pathname);
const targetDir = process.env.CARGO_TARGET_DIR || join(repo, "target");
export const wardBin = process.env.E2E_WARD_BIN || join(targetDir, "debug", "ward");
export const artifacts = join(targetDir, "e2e-artifacts");
mkdirSync(artifacts, { recursive: true });

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });
}

const psql = (sql) =>
  execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", sql]);

/// The run's database, and how to remove it (a PostgreSQL database is dropped,
/// so repeated runs leave nothing behind).
function database(dir) {
  if ((process.env.E2E_DB || "sqlite") !== "postgres") {
    return { url: `sqlite://${join(dir, "ward.db")}`, drop: () => {} };
  }
  const name = `ward_e2e_${randomBytes(6).toString("hex")}`;
  psql(`CREATE DATABASE ${name}`);
  return {
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export async function startWard() {
  const dir = mkdtempSync(join(tmpdir(), "ward-e2e-"));
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const env = {
    ...process.env,
    WARD_MASTER_SECRET: randomBytes(32).toString("base64"),
    RUST_LOG: process.env.RUST_LOG || "warn",
  };
  const config = join(dir, "ward.toml");
  const db = database(dir);
  const cleanUp = () => {
    db.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  writeFileSync(
    config,
    [
      `data_dir = "${dir}"`,
      `listen = "127.0.0.1:${port}"`,
      `database_url = "${db.url}"`,
      `public_url = "${url}"`,
      `log_level = "${process.env.E2E_LOG || "warn"}"`,
      "[rate_limit]",
      "requests_per_second = 1000",
      "burst = 1000",
      "login_per_minute = 1000",
      // The test identity providers listen on this machine.
      "[egress]",
      'allow = ["127.0.0.0/8", "::1/128"]',
      "",
    ].join("\n"),
  );
  const cli = (args, input) =>
    execFileSync(wardBin, ["--config", config, ...args], { env, input, encoding: "utf8" });
  cli(["migrate"]);
  cli(["tenant", "create", "--name", "Acme Corp"]);
  // SSO providers may only name domains their company has verified.
  for (const domain of ["acme.example", "partner.example"]) {
    cli(["tenant", "domain", "verify", "--tenant", "acme-corp", domain]);
  }
  for (const [email, role] of [
    ["admin@acme.example", "admin"],
    ["user@acme.example", "user"],
    ["viewer@acme.example", "viewer"],
    ["analyst@acme.example", "user"],
  ]) {
    cli(["user", "create", "--tenant", "acme-corp", "--email", email, "--role", role, "--password-stdin"], PASSWORD);
  }
  const child = spawn(wardBin, ["--config", config, "serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
  let exited = null;
  child.once("exit", (code, signal) => { exited = signal || `exit code ${code}`; });
  let ready = false;
  for (let i = 0; i < 300 && !ready && exited === null; i++) {
    try {
      ready = (await fetch(`${url}/readyz`)).ok;
    } catch (_) {
      /* not up yet */
    }
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  if (!ready) {
    // A suite against a Ward that never became ready would only report confusing
    // page failures: stop here, with the reason.
    if (exited === null) {
      await new Promise((ok) => { child.once("exit", ok); child.kill("SIGKILL"); });
    }
    cleanUp();
    throw new Error(
      exited === null
        ? `ward serve never answered ${url}/readyz within 30 s`
        : `ward serve stopped before it was ready (${exited})`,
    );
  }
  return {
    url,
    cli,
    stop: async () => {
      if (exited === null) {
        await new Promise((ok) => { child.once("exit", ok); child.kill("SIGTERM"); });
      }
      cleanUp();
    },
  };
}
