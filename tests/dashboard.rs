//! `serve --http` (issue 23): the dashboard in a real headless Chromium (chromedriver over WebDriver,
//! `common::browser`) against the real daemon with its FUSE mount, and its API's refusals over plain HTTP.
//! An import is made to last without a timing threshold: a real `nightfox import` process is stopped (SIGSTOP)
//! and continued (SIGCONT) by the test, so the page is seen at two different, known points. Every wait is
//! bounded; every process started here is stopped by its pid.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::*;
use nightfox::catalog::SessionStatus;
use serde_json::{json, Value};

/// Big copies share two cores, and a browser is heavy: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `nightfox serve MP --http 127.0.0.1:0 ...` and the address it printed; its stderr is drained into `log`.
struct Dash {
    _mount: Mount,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn serve_http(env: &Env, extra: &[&str]) -> Dash {
    let mp = env.path("mnt");
    let mut args = vec!["--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut mount = Mount::serve_with(env, &mp, &args, &[("RUST_LOG", "nightfox=info")]);
    let stderr = mount.child.as_mut().expect("running").stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    // Drained to the end, so the daemon never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    let start = Instant::now();
    let url = loop {
        let found =
            log.lock().unwrap().iter().find_map(|l| l.strip_prefix("nightfox: dashboard at ").map(str::to_string));
        if let Some(u) = found {
            break u;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no dashboard line: {:?}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with(":0/"), "{url}");
    Dash { _mount: mount, url, log }
}

impl Dash {
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
    }

    /// `http://127.0.0.1:PORT` (the Origin of the page).
    fn origin(&self) -> String {
        self.url.trim_end_matches('/').to_string()
    }
}

/// `nightfox import --couple COUPLE DIR` with one worker, in the background.
fn spawn_import(env: &Env, couple: &str, dir: &Path) -> Proc {
    Proc(Some(env.spawn_import_one_worker(couple, dir, Stdio::null())))
}

/// Bytes session 1 has: processed in the catalog plus its copies in `tmp/`.
fn progress(env: &Env) -> u64 {
    let done = env.catalog().session(1).map(|s| s.bytes_processed.max(0) as u64).unwrap_or(0);
    let tmp: u64 = env.tmp_entries().iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    done + tmp
}

/// A daemon with the dashboard, and a one-worker import of a card (a clip of `big` bytes, and a small one when
/// `small` gives its seed) caught mid-copy and held there (SIGSTOP): the couple's folder, the card, both processes.
fn held_import(env: &Env, couple: &str, big: u64, seed: u64, small: Option<u64>) -> (String, PathBuf, Dash, Proc) {
    let c = env.couple(couple, "2025-06-14");
    let card_dir = env.path("card");
    write_big(&card_dir.join("DCIM/C0001.MP4"), big, seed);
    if let Some(seed) = small {
        write(&card_dir.join("DCIM/C0002.MP4"), &data(seed, 200_000));
    }
    let dash = serve_http(env, &[]);
    let import = spawn_import(env, &c, &card_dir);
    env.wait_for_temp_over(16 << 20);
    import.signal(libc::SIGSTOP);
    (c, card_dir, dash, import)
}

/// What the page shows of import session `id`, if it shows it.
fn card(b: &Browser, id: i64) -> Option<Value> {
    let v = b.exec(
        r#"const c = document.querySelector('.import[data-session="' + arguments[0] + '"]');
        if (!c) return null;
        const q = (s) => c.querySelector(s);
        const cur = q('.steps li.current');
        return {
            state: c.dataset.state,
            bytes: Number(q('.bytes-done').dataset.bytes),
            files: q('.files').innerText,
            speed: q('.speed') ? q('.speed').innerText : null,
            step: cur ? cur.dataset.step : null,
            buttons: [...c.querySelectorAll('button[data-action]')].map((x) => x.dataset.action),
            text: c.innerText,
        };"#,
        vec![json!(id)],
    );
    (!v.is_null()).then_some(v)
}

#[test]
fn the_page_lists_a_running_import_whose_numbers_move() {
    let _g = serial();
    let env = Env::new();
    let (c, card_dir, dash, mut import) = held_import(&env, "Ada & Ben", 640 << 20, 7, Some(8));
    let first = progress(&env);

    let b = Browser::start();
    b.goto(&dash.url);
    let seen = b.wait_for("the running import on the page", Duration::from_secs(60), |b| {
        card(b, 1).filter(|v| v["state"] == "running" && v["bytes"].as_u64().unwrap_or(0) > 0)
    });
    assert_eq!(seen["bytes"].as_u64(), Some(first), "the page shows what the catalog and tmp/ hold: {seen}");
    assert!(seen["files"].as_str().unwrap().ends_with("/ 2 files"), "{seen}");
    assert!(seen["speed"].as_str().is_some_and(|s| s.ends_with("/s")), "a speed is shown: {seen}");
    assert!(seen["step"].as_str().is_some(), "a step is highlighted: {seen}");
    assert!(seen["buttons"].as_array().unwrap().contains(&json!("cancel")), "{seen}");

    // The import goes on for a while (at least 16 MiB more, seen by the test itself), then stops again: the page
    // must show the new number.
    import.signal(libc::SIGCONT);
    wait_until("the import to copy more", Duration::from_secs(120), || progress(&env) > first + (16 << 20));
    import.signal(libc::SIGSTOP);
    let second = progress(&env);
    let moved = b.wait_for("the page's numbers to move", Duration::from_secs(60), |b| {
        card(b, 1).filter(|v| v["bytes"].as_u64() == Some(second))
    });
    assert!(second > first, "{first} -> {second}: {moved}");

    // Let it finish: the import leaves the page and the couple shows its size.
    import.signal(libc::SIGCONT);
    let st = import.wait(Duration::from_secs(300));
    assert!(st.success(), "{st}");
    let total = (640u64 << 20) + 200_000;
    b.wait_for("the finished import to leave the page and the couple's size", Duration::from_secs(60), |b| {
        let size = b.exec(
            "const r = document.querySelector('tr[data-couple=\"' + arguments[0] + '\"] td[data-bytes]'); \
             return r ? Number(r.dataset.bytes) : null;",
            vec![json!(c)],
        );
        (card(b, 1).is_none() && size.as_u64() == Some(total)).then_some(())
    });
    assert_all_imported(&env, &card_dir);
    drop(b);
    assert!(!dash.log().contains("panicked"), "{}", dash.log());
}

#[test]
fn a_paused_session_shows_resume_and_the_button_resumes_it() {
    let _g = serial();
    let env = Env::new();
    let c = env.couple("Cleo & Dan", "2025-07-05");
    let card_dir = env.path("card");
    write_big(&card_dir.join("DCIM/C0001.MP4"), 384 << 20, 11);
    write(&card_dir.join("DCIM/C0002.MP4"), &data(12, 150_000));
    // An import stopped with Ctrl-C mid-copy: cancelled, resumable (status calls it paused).
    let mut import = spawn_import(&env, &c, &card_dir);
    env.wait_for_temp_over(16 << 20);
    import.signal(libc::SIGINT);
    let st = import.wait(Duration::from_secs(60));
    assert!(!st.success(), "an interrupted import fails: {st}");
    let s = env.catalog().session(1).unwrap();
    assert!(s.status == SessionStatus::Cancelled && s.can_resume, "{s:?}");

    let dash = serve_http(&env, &[]);
    let b = Browser::start();
    b.goto(&dash.url);
    let seen = b.wait_for("the paused session with its Resume button", Duration::from_secs(60), |b| {
        card(b, 1).filter(|v| v["state"] == "paused")
    });
    assert!(seen["buttons"].as_array().unwrap().contains(&json!("resume")), "{seen}");
    b.click(r#".import[data-session="1"] button[data-action="resume"]"#);

    let start = Instant::now();
    while env.catalog().session(1).unwrap().status != SessionStatus::Completed {
        assert!(start.elapsed() < Duration::from_secs(300), "session 1 did not finish: {}", dash.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_all_imported(&env, &card_dir);
    let v: Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(v["sessions"], json!([]), "{v}");
    // The page says how the resume it started ended.
    let action = b.wait_for("the resume's outcome on the page", Duration::from_secs(60), |b| {
        let v = b.exec(
            "const r = document.querySelector('tr[data-action-id]'); \
             return r ? { state: r.dataset.state, text: r.innerText } : null;",
            vec![],
        );
        (v["state"] == "done").then_some(v)
    });
    assert!(action["text"].as_str().unwrap().contains("session 1 completed"), "{action}");
    assert!(card(&b, 1).is_none(), "the finished session left the page");
}

/// The Cancel button reaches an import another process runs (`nightfox session cancel` behind it): the page says
/// it was asked, that import stops at its next chunk and ends the session for good, and the card leaves the page.
#[test]
fn the_cancel_button_stops_an_import_that_another_process_runs() {
    let _g = serial();
    let env = Env::new();
    // Held mid-copy while the page is used: its watch for a cancel runs again once it continues.
    let (_, _, dash, mut import) = held_import(&env, "Eve & Finn", 384 << 20, 13, None);
    let b = Browser::start();
    b.goto(&dash.url);
    b.wait_for("the running import on the page", Duration::from_secs(60), |b| {
        card(b, 1).filter(|v| v["state"] == "running")
    });
    b.exec("window.confirm = () => true; return null;", vec![]);
    b.click(r#".import[data-session="1"] button[data-action="cancel"]"#);
    let said = b.wait_for("the page to say the cancel was asked", Duration::from_secs(60), |b| {
        let t = b.exec("return document.getElementById('notice').textContent;", vec![]);
        t.as_str().filter(|t| t.contains("cancelling session 1")).map(str::to_string)
    });
    assert!(said.contains("next chunk"), "{said}");
    import.signal(libc::SIGCONT);
    let st = import.wait(Duration::from_secs(60));
    assert_eq!(st.code(), Some(1), "the cancelled import fails: {st}");
    let s = env.catalog().session(1).unwrap();
    assert_eq!((s.status, s.can_resume), (SessionStatus::Cancelled, false), "{s:?}");
    assert!(env.tmp_entries().is_empty(), "{:?}", env.tmp_entries());
    b.wait_for("the cancelled session to leave the page", Duration::from_secs(60), |b| {
        card(b, 1).is_none().then_some(())
    });
    drop(b);
    assert!(!dash.log().contains("panicked"), "{}", dash.log());
}

/// A plain HTTP client for the API (no redirects, bounded).
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Status and JSON body of a request.
fn send(req: reqwest::blocking::RequestBuilder) -> (u16, Value) {
    let r = req.send().expect("request");
    let code = r.status().as_u16();
    let text = r.text().unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A refusal: the code, and a one-line JSON error.
fn refused(got: (u16, Value), code: u16) -> String {
    assert_eq!(got.0, code, "{:?}", got.1);
    let msg = got.1["error"].as_str().unwrap_or_else(|| panic!("no error message: {}", got.1)).to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
    msg
}

/// `serve ... ARGS` expected to refuse at start: its exit status and stderr (bounded).
fn serve_refused(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mp = env.path("mnt-refused");
    std::fs::create_dir_all(&mp).unwrap();
    let log = env.path("refused.log");
    let child = env
        .cmd()
        .arg("serve")
        .arg(&mp)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut p = Proc(Some(child));
    let st = p.wait(Duration::from_secs(30));
    assert!(!is_mounted(&mp), "a refused serve mounted nothing");
    (st.code(), std::fs::read_to_string(&log).unwrap())
}

#[test]
fn the_api_refuses_missing_tokens_foreign_origins_and_open_addresses() {
    let _g = serial();
    let env = Env::new();
    let http = client();

    // Loopback without a token file: reads are open, every POST needs the page's token and the same origin.
    {
        let dash = serve_http(&env, &[]);
        let o = dash.origin();
        let (code, v) = send(http.get(format!("{o}/api/status")));
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["status"]["daemon"]["running"], true, "{v}");
        let page = http.get(&dash.url).send().unwrap().text().unwrap();
        let token = page
            .split(r#"name="nightfox-token" content=""#)
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert_eq!(token.len(), 64, "the page carries the daemon's token: {page}");
        assert!(!dash.log().contains(&token), "the token is never logged");
        let resume = format!("{o}/api/sessions/1/resume");
        let bearer = format!("Bearer {token}");
        let msg = refused(send(http.post(&resume).header("Origin", &o)), 401);
        assert!(msg.contains("token"), "{msg}");
        refused(send(http.post(&resume).header("Origin", &o).header("Authorization", "Bearer nope")), 401);
        let msg = refused(
            send(http.post(&resume).header("Origin", "http://evil.example").header("Authorization", &bearer)),
            403,
        );
        assert!(msg.contains("Origin"), "{msg}");
        refused(send(http.post(&resume).header("Authorization", &bearer)), 403);
        let cross = http
            .post(&resume)
            .header("Origin", &o)
            .header("Sec-Fetch-Site", "cross-site")
            .header("Authorization", &bearer);
        refused(send(cross), 403);
        // A page of another name pointed at 127.0.0.1 (DNS rebinding) gets nothing, not even the page.
        let port = o.rsplit(':').next().unwrap();
        refused(send(http.get(&dash.url).header("Host", format!("evil.example:{port}"))), 403);
        // Token and origin right: the request reaches the route (there is no session 1).
        let msg = refused(send(http.post(&resume).header("Origin", &o).header("Authorization", &bearer)), 404);
        assert!(msg.contains("session 1"), "{msg}");
        // GET never changes state.
        refused(send(http.get(&resume)), 405);
    }

    // A token file: every API request needs the token, and the page does not carry it.
    let token = "k3P9-dashboard-token-0123456789abcdef";
    let file = env.path("dashboard.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    {
        let dash = serve_http(&env, &["--http-token-file", file.to_str().unwrap()]);
        let o = dash.origin();
        refused(send(http.get(format!("{o}/api/status"))), 401);
        refused(
            send(http.get(format!("{o}/api/status")).header("Authorization", "Bearer wrong-token-0123456789")),
            401,
        );
        let (code, v) = send(http.get(format!("{o}/api/status")).header("Authorization", format!("Bearer {token}")));
        assert_eq!(code, 200, "{v}");
        let page = http.get(&dash.url).send().unwrap().text().unwrap();
        assert!(!page.contains(token) && page.contains("nightfox-token"), "the page asks for the token");
        let import = format!("{o}/api/sources/9/import");
        refused(send(http.post(&import).header("Origin", &o)), 401);
        let asked = http.post(&import).header("Origin", &o).header("Authorization", format!("Bearer {token}"));
        refused(send(asked), 404);
        // In the browser: the page asks for the token, then shows the archive.
        let b = Browser::start();
        b.goto(&dash.url);
        b.wait_for("the page to ask for the token", Duration::from_secs(30), |b| {
            let hidden = b.exec("return document.getElementById('token-form').classList.contains('hidden')", vec![]);
            (hidden == false).then_some(())
        });
        b.exec(
            "document.getElementById('token').value = arguments[0]; \
             document.getElementById('token-form').requestSubmit();",
            vec![json!(token)],
        );
        b.wait_for("the page to show the archive", Duration::from_secs(30), |b| {
            let text = b.exec("return document.getElementById('imports').innerText", vec![]);
            text.as_str().is_some_and(|t| t.contains("No import running")).then_some(())
        });
        assert!(!dash.log().contains(token), "the token is never logged");
    }

    // Off loopback without a token file, or with a token file others can read: refused at start, exit 2.
    let (code, err) = serve_refused(&env, &["--http", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("nightfox: ") && err.contains("--http-token-file"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = serve_refused(&env, &["--http", "127.0.0.1:0", "--http-token-file", file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.trim().lines().count() == 1 && err.contains("chmod 600") && !err.contains(token), "{err}");
}
