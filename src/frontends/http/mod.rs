//! `serve --http ADDR`: the dashboard, a front end beside the mount that serves a small web page (plain
//! HTML/CSS/JS embedded in the binary, no external URL) at `/` and a JSON API under `/api/` from the daemon's
//! process (routes in [`api`]). It owns the HTTP side: the listening socket (`tiny_http`, a few worker threads),
//! who may ask what, and the response headers.
//!
//! Who may ask: the address must be loopback unless a token file is given (`--http-token-file`, 0600 like the env
//! file). With a token file every API request needs `Authorization: Bearer TOKEN`. Without one (loopback only)
//! reads are open to local users, and the daemon draws a random token at start and embeds it in the page it serves;
//! the `Host` must then name a loopback address (a page of another site whose name was pointed at 127.0.0.1 — DNS
//! rebinding — is refused before it can read the page). Every state-changing request is a POST and needs the token
//! and a same-origin check (`Origin` equal to `http://` + `Host`, required; a `Sec-Fetch-Site` other than
//! `same-origin` refused). Tokens are compared in constant time and never logged. Refusals are 401/403 JSON with a
//! one-line message.

mod api;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tracing::{debug, warn};

use crate::archive::Archive;
use crate::error::{Error, Result};
use crate::frontends::{FrontEnd, Stop};
use crate::fs::ArchiveFs;
use crate::serve::one_line;

const PAGE: &str = include_str!("page.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// Where the page's embedded token goes (see `page.html`).
const TOKEN_SLOT: &str = "{{NIGHTFOX_TOKEN}}";

/// Threads answering requests (the page polls once a second; actions run on threads of their own).
const WORKERS: usize = 4;

/// The shortest token a token file may hold.
const MIN_TOKEN: usize = 16;

/// How the dashboard checks its callers.
#[derive(Clone)]
struct Auth {
    token: String,
    /// From a token file: every API request needs it, and the page does not carry it. Else a token drawn at
    /// start, embedded in the page, needed by POSTs only, with the `Host` held to loopback names.
    from_file: bool,
}

/// The dashboard front end (see the module doc).
pub struct Dashboard {
    listen: SocketAddr,
    auth: Auth,
    root: PathBuf,
    server: Option<Arc<tiny_http::Server>>,
}

impl Dashboard {
    /// Checks the address against the token file (loopback unless one is given) and reads the token; nothing
    /// listens yet. Errors are `Error::Invalid` (one line, exit 2).
    pub fn new(listen: SocketAddr, token_file: Option<&Path>, archive_root: &Path) -> Result<Dashboard> {
        check(listen, token_file)?;
        let auth = match token_file {
            Some(f) => Auth { token: read_token_file(f)?, from_file: true },
            None => Auth { token: random_token()?, from_file: false },
        };
        Ok(Dashboard { listen, auth, root: archive_root.to_path_buf(), server: None })
    }
}

/// The checks of [`Dashboard::new`] alone, for the command line to run first (its refusals are usage errors):
/// an address off loopback needs a token file, and the token file must be private and hold a token.
pub fn check(listen: SocketAddr, token_file: Option<&Path>) -> Result<()> {
    match token_file {
        Some(f) => read_token_file(f).map(drop),
        None if listen.ip().is_loopback() => Ok(()),
        None => Err(Error::Invalid(format!(
            "--http {listen} is reachable from other machines: give --http-token-file FILE (a 0600 file holding the \
             token), or listen on 127.0.0.1"
        ))),
    }
}

/// Reads the token of `--http-token-file`: refused when group or others may read the file, or when it holds
/// less than [`MIN_TOKEN`] characters or anything but visible ASCII (it travels in a header). Never echoes it.
fn read_token_file(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).map_err(|e| Error::Invalid(format!("--http-token-file {}: {e}", path.display())))?;
    if let Some(m) = crate::secrets::readable_by_others(path, meta.mode(), "token file") {
        return Err(Error::Invalid(m));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("--http-token-file {}: {e}", path.display())))?;
    let token = text.trim();
    if token.len() < MIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Invalid(format!(
            "the token file {} must hold one token of at least {MIN_TOKEN} visible ASCII characters (e.g. `openssl \
             rand -hex 32`)",
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// 32 random bytes from the system, as hex.
fn random_token() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Invalid("the dashboard cannot draw a random token: no system randomness".into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl FrontEnd for Dashboard {
    fn describe(&self) -> String {
        format!("http:{}", self.listen)
    }

    fn start(&mut self, _fs: &Arc<ArchiveFs>) -> Result<()> {
        let server = tiny_http::Server::http(self.listen)
            .map_err(|e| Error::Invalid(format!("the dashboard cannot listen on {}: {e}", self.listen)))?;
        let addr = server.server_addr().to_ip().unwrap_or(self.listen);
        // Tests and scripts read the real port (the address may have asked for port 0) from this line.
        eprintln!("nightfox: dashboard at http://{addr}/");
        self.server = Some(Arc::new(server));
        Ok(())
    }

    fn run(self: Box<Self>, _fs: Arc<ArchiveFs>, stop: Arc<Stop>) -> Result<()> {
        let Some(server) = self.server else {
            return Err(Error::Invalid("the dashboard was not started".into()));
        };
        let archive = Arc::new(Archive::open(&self.root)?);
        let state = Arc::new(api::State::new(archive));
        let mut workers = Vec::new();
        for n in 0..WORKERS {
            let (server, state, stop, auth) =
                (Arc::clone(&server), Arc::clone(&state), Arc::clone(&stop), self.auth.clone());
            let h = std::thread::Builder::new()
                .name(format!("nightfox-http-{n}"))
                .spawn(move || serve_requests(&server, &state, &auth, &stop))
                .map_err(|e| Error::Invalid(format!("cannot start the dashboard's threads: {e}")))?;
            workers.push(h);
        }
        stop.wait();
        for h in workers {
            if h.join().is_err() {
                warn!("a dashboard thread panicked");
            }
        }
        // Imports started from the page stop at their next chunk (resumable, as at any daemon stop).
        state.shutdown();
        Ok(())
    }
}

/// One worker: answers requests until the daemon stops (looking at the stop every 200 ms).
fn serve_requests(server: &tiny_http::Server, state: &api::State, auth: &Auth, stop: &Stop) {
    while !stop.is_stopped() {
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => answer(req, state, auth),
            Ok(None) => {}
            Err(e) => {
                warn!("dashboard: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// What a request is answered with.
pub(crate) struct Reply {
    pub code: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(code: u16, v: &impl serde::Serialize) -> Reply {
        match serde_json::to_string(v) {
            Ok(body) => Reply { code, content_type: "application/json", body },
            Err(e) => Reply::error(500, &format!("cannot encode the answer: {e}")),
        }
    }

    /// `{"error": "one line"}`.
    pub fn error(code: u16, msg: &str) -> Reply {
        let body = serde_json::json!({ "error": one_line(msg) }).to_string();
        Reply { code, content_type: "application/json", body }
    }

    fn text(content_type: &'static str, body: String) -> Reply {
        Reply { code: 200, content_type, body }
    }
}

/// A request's facts the checks need.
struct Asked<'a> {
    post: bool,
    path: &'a str,
    host: Option<&'a str>,
    origin: Option<&'a str>,
    fetch_site: Option<&'a str>,
    bearer: Option<&'a str>,
}

fn header<'a>(req: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str())
}

fn answer(req: tiny_http::Request, state: &api::State, auth: &Auth) {
    let post = *req.method() == tiny_http::Method::Post;
    let get = matches!(*req.method(), tiny_http::Method::Get | tiny_http::Method::Head);
    let url = req.url().to_string();
    let path = url.split('?').next().unwrap_or("");
    let asked = Asked {
        post,
        path,
        host: header(&req, "Host"),
        origin: header(&req, "Origin"),
        fetch_site: header(&req, "Sec-Fetch-Site"),
        bearer: header(&req, "Authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim),
    };
    let reply = if !post && !get {
        Reply::error(405, "only GET and POST are answered")
    } else {
        match permit(&asked, auth) {
            Err(r) => r,
            Ok(()) => route(&asked, state, auth),
        }
    };
    debug!(method = %req.method(), path, code = reply.code, "dashboard request");
    respond(req, reply);
}

/// The security checks of a request (see the module doc); `Err` holds the refusal.
fn permit(r: &Asked, auth: &Auth) -> std::result::Result<(), Reply> {
    if !auth.from_file && !r.host.is_some_and(loopback_host) {
        return Err(Reply::error(
            403,
            "the Host of this request is not a loopback address: open the dashboard at http://127.0.0.1:PORT/",
        ));
    }
    let api = r.path.starts_with("/api/");
    let needs_token = r.post || (api && auth.from_file);
    if needs_token {
        let given = r.bearer.unwrap_or("");
        if given.is_empty() {
            return Err(Reply::error(401, "this request needs the dashboard's token (Authorization: Bearer TOKEN)"));
        }
        if !bool::from(given.as_bytes().ct_eq(auth.token.as_bytes())) {
            return Err(Reply::error(401, "wrong token"));
        }
    }
    if r.post {
        let Some(host) = r.host else {
            return Err(Reply::error(403, "a request without a Host header is refused"));
        };
        match r.origin {
            None => return Err(Reply::error(403, "a POST without an Origin header is refused")),
            Some(o) if o != format!("http://{host}") => {
                return Err(Reply::error(403, "cross-origin request refused: the Origin does not match the dashboard"))
            }
            Some(_) => {}
        }
        if r.fetch_site.is_some_and(|s| s != "same-origin") {
            return Err(Reply::error(403, "cross-site request refused (Sec-Fetch-Site)"));
        }
    }
    Ok(())
}

/// True for a `Host` that names the loopback: `localhost`, `127.x.y.z` or `[::1]`, with any port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn route(r: &Asked, state: &api::State, auth: &Auth) -> Reply {
    match (r.post, r.path) {
        (false, "/" | "/index.html") => {
            // Without a token file the page carries the token its buttons need; with one, the page asks for it.
            let token = if auth.from_file { "" } else { auth.token.as_str() };
            Reply::text("text/html; charset=utf-8", PAGE.replace(TOKEN_SLOT, token))
        }
        (false, "/app.js") => Reply::text("text/javascript; charset=utf-8", APP_JS.to_string()),
        (false, "/style.css") => Reply::text("text/css; charset=utf-8", STYLE_CSS.to_string()),
        _ if r.path.starts_with("/api/") => api::route(state, r.post, &r.path["/api/".len()..]),
        _ => Reply::error(404, "no such page"),
    }
}

fn respond(req: tiny_http::Request, reply: Reply) {
    let mut resp = tiny_http::Response::from_string(reply.body).with_status_code(reply.code);
    let headers = [
        ("Content-Type", reply.content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'none'"),
    ];
    for (k, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp.add_header(h);
        }
    }
    if let Err(e) = req.respond(resp) {
        debug!("dashboard: the client went away: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked<'a>(post: bool, path: &'a str, origin: Option<&'a str>, bearer: Option<&'a str>) -> Asked<'a> {
        Asked { post, path, host: Some("127.0.0.1:8080"), origin, fetch_site: None, bearer }
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1:8080", "localhost:1", "LOCALHOST", "[::1]:80", "127.1.2.3"] {
            assert!(loopback_host(h), "{h}");
        }
        for h in ["evil.example:8080", "10.0.0.1:80", "[fe80::1]:80", "", "localhost.evil.example"] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn posts_need_the_token_and_the_origin() {
        let auth = Auth { token: "a".repeat(32), from_file: false };
        let t = auth.token.clone();
        let origin = Some("http://127.0.0.1:8080");
        assert!(permit(&asked(false, "/api/status", None, None), &auth).is_ok());
        assert_eq!(permit(&asked(true, "/api/sources/1/test", origin, None), &auth).unwrap_err().code, 401);
        assert_eq!(permit(&asked(true, "/api/sources/1/test", origin, Some("b")), &auth).unwrap_err().code, 401);
        assert_eq!(permit(&asked(true, "/api/sources/1/test", None, Some(&t)), &auth).unwrap_err().code, 403);
        let foreign = Some("http://evil.example");
        assert_eq!(permit(&asked(true, "/api/sources/1/test", foreign, Some(&t)), &auth).unwrap_err().code, 403);
        assert!(permit(&asked(true, "/api/sources/1/test", origin, Some(&t)), &auth).is_ok());
        let mut cross = asked(true, "/api/sources/1/test", origin, Some(&t));
        cross.fetch_site = Some("cross-site");
        assert_eq!(permit(&cross, &auth).unwrap_err().code, 403);
        let mut rebound = asked(false, "/", None, None);
        rebound.host = Some("evil.example:8080");
        assert_eq!(permit(&rebound, &auth).unwrap_err().code, 403);
        let file = Auth { token: t.clone(), from_file: true };
        assert_eq!(permit(&asked(false, "/api/status", None, None), &file).unwrap_err().code, 401);
        assert!(permit(&asked(false, "/api/status", None, Some(&t)), &file).is_ok());
        assert!(permit(&asked(false, "/", None, None), &file).is_ok());
    }

    #[test]
    fn off_loopback_needs_a_private_token_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = Dashboard::new("0.0.0.0:8080".parse().unwrap(), None, dir.path()).err().unwrap();
        assert!(matches!(e, Error::Invalid(_)) && e.to_string().contains("--http-token-file"), "{e}");
        let f = dir.path().join("token");
        std::fs::write(&f, "0123456789abcdef0123\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Dashboard::new("0.0.0.0:8080".parse().unwrap(), Some(&f), dir.path()).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let d = Dashboard::new("0.0.0.0:8080".parse().unwrap(), Some(&f), dir.path()).unwrap();
        assert_eq!(d.auth.token, "0123456789abcdef0123");
        std::fs::write(&f, "short").unwrap();
        assert!(Dashboard::new("127.0.0.1:1".parse().unwrap(), Some(&f), dir.path()).is_err());
        let a = Dashboard::new("127.0.0.1:1".parse().unwrap(), None, dir.path()).unwrap().auth;
        assert_eq!((a.token.len(), a.from_file), (64, false));
    }
}
