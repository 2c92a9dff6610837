//! A real `ward serve` for the tasks that drive one (the HTTP benchmarks, the API
//! contract check): a scratch directory with its `ward.toml`, a fresh PostgreSQL
//! database when asked, the operator CLI, and raw HTTP/1.1 on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::run_step;

/// One installation: its directory, port and database; removed when dropped.
pub(crate) struct LocalWard {
    bin: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    db_name: Option<String>,
}

impl LocalWard {
    /// A scratch directory named after `purpose`, a free loopback port, a fresh
    /// PostgreSQL database when `postgres` (SQLite in the directory otherwise),
    /// per-IP rate limits off, and `extra` appended to `ward.toml`.
    pub(crate) fn new(
        bin: PathBuf,
        purpose: &str,
        postgres: bool,
        extra: &str,
    ) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("ward-{purpose}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut ward = Self {
            bin,
            dir,
            port,
            db_name: None,
        };
        let database = if postgres {
            let name = format!("ward_{purpose}_{}", std::process::id());
            psql(&format!("CREATE DATABASE {name}"))?;
            ward.db_name = Some(name.clone());
            format!("database_url = \"postgres://postgres@127.0.0.1:5432/{name}\"\n")
        } else {
            String::new()
        };
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nlog_level = \"warn\"\n{database}\
             [rate_limit]\nrequests_per_second = 0\nlogin_per_minute = 0\n{extra}"
        );
        std::fs::write(ward.dir.join("ward.toml"), config).map_err(|e| e.to_string())?;
        Ok(ward)
    }

    /// Runs an operator command (`ward tenant create ...`) in the directory.
    pub(crate) fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let mut child = Command::new(&self.bin)
            .current_dir(&self.dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(s) = stdin {
            child
                .stdin
                .take()
                .ok_or("stdin")?
                .write_all(s.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        drop(child.stdin.take());
        let st = child.wait().map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("ward {args:?} failed"))
        }
    }

    /// A company (`Acme`, slug `acme`) and its first Admin.
    pub(crate) fn bootstrap_admin(&self, email: &str, password: &str) -> Result<(), String> {
        self.cli(&["tenant", "create", "--name", "Acme"], None)?;
        self.cli(
            &[
                "user",
                "create",
                "--tenant",
                "acme",
                "--email",
                email,
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some(password),
        )
    }

    /// Starts `ward serve` and waits until it is ready.
    pub(crate) fn serve(&self) -> Result<Server, String> {
        let server = Server(
            Command::new(&self.bin)
                .current_dir(&self.dir)
                .arg("serve")
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
        self.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> Result<(), String> {
        for _ in 0..100 {
            if let Ok((status, _)) =
                self.http("GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                && status == 200
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("ward serve did not become ready".to_owned())
    }

    /// A raw HTTP/1.1 exchange; returns the status code and the whole response.
    pub(crate) fn http(&self, request: &str) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("bad response")?;
        Ok((status, resp))
    }

    /// A JSON request; `cookie` is a `name=value` pair.
    pub(crate) fn post_json(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> Result<(u16, String), String> {
        let cookie = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        self.http(&format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{cookie}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Signs in; returns the latency and the session's `name=value` cookie pair.
    pub(crate) fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(Duration, Option<String>), String> {
        let body = format!("{{\"email\":\"{email}\",\"password\":\"{password}\"}}");
        let started = Instant::now();
        let (status, resp) = self.post_json("/api/v1/auth/login", None, &body)?;
        let took = started.elapsed();
        if status != 200 {
            return Err(format!("login answered {status}"));
        }
        let cookie = resp
            .lines()
            .find_map(|l| {
                l.strip_prefix("set-cookie: ")
                    .or_else(|| l.strip_prefix("Set-Cookie: "))
            })
            .and_then(|c| c.split(';').next())
            .map(str::to_owned);
        Ok((took, cookie))
    }
}

impl Drop for LocalWard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = &self.db_name {
            let _ = psql(&format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

fn psql(statement: &str) -> Result<(), String> {
    run_step(
        statement,
        Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-qc", statement]),
    )
}

/// A running `ward serve`, stopped (SIGTERM, then waited for) when dropped.
pub(crate) struct Server(Child);

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}
