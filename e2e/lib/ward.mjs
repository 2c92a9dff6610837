// Starts a real Ward for the browser suite: its own data directory, SQLite or a
// fresh PostgreSQL database (E2E_DB=postgres), a company with an Admin, a
// User and a Viewer made by the operator CLI, served on http://localhost:PORT
// (WebAuthn needs a secure context; localhost is one).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
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

function databaseUrl(dir) {
  if ((process.env.E2E_DB || "sqlite") !== "postgres") {
    return `sqlite://${join(dir, "ward.db")}`;
  }
  const name = `ward_e2e_${randomBytes(6).toString("hex")}`;
  execFileSync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", `CREATE DATABASE ${name}`]);
  return `postgres://postgres@127.0.0.1:5432/${name}`;
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
  writeFileSync(
    config,
    [
      `data_dir = "${dir}"`,
      `listen = "127.0.0.1:${port}"`,
      `database_url = "${databaseUrl(dir)}"`,
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
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch (_) {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    cli,
    stop: () => new Promise((ok) => { child.once("exit", ok); child.kill("SIGTERM"); }),
  };
}
