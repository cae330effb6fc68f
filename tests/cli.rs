//! The command line explains itself: every command and argument has help, allowed values are listed, exit codes
//! are 0 success, 1 failure, 2 wrong usage only; completions and manual pages are generated from the same clap
//! definitions; docs/cli.md and the README's table of commands match the binary.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{bare, text, Env, BIN};

/// Help text with clap's line wrapping undone.
fn flat(b: &[u8]) -> String {
    text(b).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every command below `cmd` (itself included) with its path, hidden ones too.
fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    out.push((path.to_string(), cmd.clone()));
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_command_and_argument_has_help() {
    let mut all = Vec::new();
    walk(&nightfox::cli::command(), "nightfox", &mut all);
    assert!(all.len() > 40, "{} commands", all.len());
    let mut missing = Vec::new();
    for (path, cmd) in &all {
        if cmd.get_about().is_none_or(|a| a.to_string().trim().is_empty()) {
            missing.push(format!("{path}: no description"));
        }
        for arg in cmd.get_arguments() {
            if arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                missing.push(format!("{path} {}: no help", arg.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    // Closed sets of values are listed by clap.
    let find = |path: &str, arg: &str| -> Vec<String> {
        let (_, cmd) = all.iter().find(|(p, _)| p == path).unwrap_or_else(|| panic!("no command {path}"));
        let a = cmd.get_arguments().find(|a| a.get_id() == arg).unwrap_or_else(|| panic!("{path}: no {arg}"));
        a.get_possible_values().iter().map(|v| v.get_name().to_string()).collect()
    };
    for path in ["nightfox import", "nightfox file move", "nightfox camera add", "nightfox source add"] {
        assert_eq!(find(path, "footage_type"), ["modern", "dadcam", "super8"], "{path}");
    }
    assert_eq!(find("nightfox source edit", "footage_type"), ["modern", "dadcam", "super8", "auto"]);
    for path in ["nightfox import", "nightfox source add", "nightfox source edit"] {
        assert_eq!(find(path, "duplicates"), ["skip", "import"], "{path}");
    }
    assert_eq!(find("nightfox export", "layout"), ["tree", "original"]);
    assert_eq!(find("nightfox secrets migrate", "to"), ["keyring", "catalog"]);
    let shells = find("nightfox completions", "shell");
    assert!(["bash", "zsh", "fish"].iter().all(|s| shells.contains(&s.to_string())), "{shells:?}");
    // Every --json says what it does, the same way.
    for (path, cmd) in &all {
        if let Some(a) = cmd.get_arguments().find(|a| a.get_id() == "json") {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("JSON for scripts"), "{path} --json: {help}");
        }
    }
}

#[test]
fn help_shows_values_defaults_and_examples() {
    let out = bare(&["import", "--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = flat(&out.stdout);
    for word in ["modern", "dadcam", "super8", "skip", "[default: skip]", "Examples:", "nightfox import --couple"] {
        assert!(help.contains(word), "import --help lacks {word:?}:\n{help}");
    }
    // Without --camera, routing is by metadata (not `unknown` outright).
    assert!(help.contains("routed by metadata"), "{help}");
    for cmd in ["init", "mount", "serve", "verify", "export", "mhl"] {
        let h = flat(&bare(&[cmd, "--help"], &[]).stdout);
        assert!(h.contains("Examples:") && h.contains(&format!("nightfox {cmd}")), "{cmd} --help:\n{h}");
    }
    let h = flat(&bare(&["source", "add", "--help"], &[]).stdout);
    assert!(h.contains("Examples:") && h.contains("--password-stdin"), "{h}");
    // The main help lists every command with a description, and the exit codes.
    let out = bare(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let main = text(&out.stdout);
    assert!(flat(&out.stdout).contains("Exit status: 0 success, 1 failure, 2 wrong usage"), "{main}");
    let commands = main.lines().skip_while(|l| !l.starts_with("Commands:")).skip(1).take_while(|l| !l.is_empty());
    // A command's line (continuation lines are indented deeper) has its description beside it.
    for line in commands.filter(|l| !l.starts_with("   ")) {
        assert!(line.split_whitespace().count() > 1, "a command without a description: {line:?}");
    }
    let out = bare(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("nightfox "), "{}", text(&out.stdout));
    // A missing subcommand: the help on stderr, exit 2 (at the top and in a group).
    for args in [&[][..], &["source"][..], &["couple"][..]] {
        let out = bare(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("Usage:") && err.contains("Commands:"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn exit_codes_are_0_success_1_failure_2_usage() {
    let env = Env::new();
    let couple = env.couple("Exit Codes", "2025-05-05");
    let c = couple.as_str();
    let code = |args: &[&str]| {
        let out = env.run(args);
        let err = text(&out.stderr);
        (out.status.code(), err)
    };
    // Success.
    assert_eq!(code(&["couple", "list"]).0, Some(0));
    // Wrong usage: the command line itself.
    for args in [
        vec!["import", "--couple", &c, "--frobnicate", "/tmp"],
        vec!["import", "--couple", &c, "--type", "vhs", "/tmp"],
        vec!["import", "--couple", &c],
        vec!["resume", "seven"],
        vec!["couple", "add", "--name", "X", "--date", "2025-02-30"],
        vec!["couple", "rename", &c],
        vec!["source", "add", "ftp://nas/footage", "--couple", &c],
        vec!["mhl", "nope", "/tmp"],
        vec!["init", "--blobs", "gopher://x"],
        vec!["man", "no-such-command"],
        vec!["gc"], // no terminal to ask on, and no --yes
    ] {
        let (got, err) = code(&args);
        assert_eq!(got, Some(2), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} says why");
    }
    // Failures at run time: exit 1, one line.
    let missing = env.path("does-not-exist");
    let backup = env.path("backup.db");
    std::fs::write(&backup, b"taken").unwrap();
    for args in [
        vec!["resume", "999"],
        vec!["session", "cancel", "999"],
        vec!["import", "--couple", "no-such-couple", "/tmp"],
        vec!["import", "--couple", &c, missing.to_str().unwrap()],
        vec!["backup-catalog", backup.to_str().unwrap()],
        vec!["mhl", "check", env.dir.path().to_str().unwrap()],
    ] {
        let (got, err) = code(&args);
        assert_eq!(got, Some(1), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
    assert!(code(&["resume", "999"]).1.contains("no import session 999"));
    // An archive that is not there is a failure, not wrong usage.
    let out = Command::new(BIN)
        .arg("--archive")
        .arg(env.path("nowhere"))
        .args(["couple", "list"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bare(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in ["import", "verify", "source", "couple", "super8", "dry-run"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nightfox.bash");
    std::fs::write(&file, bare(&["completions", "bash"], &[]).stdout).unwrap();
    let st = Command::new("bash").arg("-n").arg(&file).status().expect("bash is needed for this test");
    assert!(st.success(), "bash -n refuses the completion script");
    assert_eq!(bare(&["completions", "tcsh"], &[]).status.code(), Some(2));
}

/// Renders a manual page with groff (installed by scripts/setup.sh test), as `man` would.
fn groff(page: &Path) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbou"])
        .arg(page)
        .output()
        .expect("groff is needed for this test (scripts/setup.sh test installs groff-base)");
    let err = text(&out.stderr);
    assert!(out.status.success() && !err.contains("error"), "{}: {err}", page.display());
    text(&out.stdout)
}

#[test]
fn manual_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = bare(&["man", "--out", out_dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut pages: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for p in ["nightfox.1", "nightfox-import.1", "nightfox-source-add.1", "nightfox-completions.1"] {
        assert!(pages.iter().any(|q| q == p), "{p} not in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("help-markdown") || p.contains("generate")), "hidden: {pages:?}");
    let main = groff(&out_dir.join("nightfox.1"));
    assert!(main.contains("NAME") && main.contains("verify"), "{main}");
    let import = groff(&out_dir.join("nightfox-import.1"));
    assert!(import.contains("--couple") && import.contains("super8"), "{import}");
    // One page on stdout: the main one, or a command's.
    let page = dir.path().join("source-add.1");
    let out = bare(&["man", "source", "add"], &[]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&page, &out.stdout).unwrap();
    assert!(groff(&page).contains("--password-stdin"));
    assert!(text(&bare(&["man"], &[]).stdout).contains(".TH nightfox"));
}

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn docs_cli_md_is_up_to_date() {
    let out = bare(&["help-markdown"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let generated = text(&out.stdout);
    assert_eq!(generated, nightfox::cli::help_markdown());
    assert!(generated.contains("## `nightfox import`") && generated.contains("super8"), "{generated}");
    assert!(!generated.contains("help-markdown`\n"), "the hidden command is not documented");
    let committed = repo_file("docs/cli.md");
    if committed != generated {
        let first = committed.lines().zip(generated.lines()).position(|(a, b)| a != b);
        panic!(
            "docs/cli.md is out of date (first difference at line {}): regenerate it with \
             `cargo run -q -- help-markdown --out docs/cli.md`",
            first.map_or("end".into(), |l| (l + 1).to_string())
        );
    }
}

/// The README's table of commands: one row per visible command, in `--help`'s order, its description the
/// command's own, linking to its section of docs/cli.md.
#[test]
fn readme_table_of_commands_matches_the_binary() {
    let cmd = nightfox::cli::command();
    let mut subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    subs.sort_by_key(|s| s.get_display_order());
    let expected: Vec<String> = subs
        .iter()
        .map(|s| {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            format!("| [`{0}`](docs/cli.md#nightfox-{0}) | {about} |", s.get_name())
        })
        .collect();
    let readme = repo_file("README.md");
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("<!-- commands: checked by tests/cli.rs"))
        .skip(3)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        rows,
        expected,
        "the README's table of commands differs from the binary; the rows should read:\n{}",
        expected.join("\n")
    );
}
