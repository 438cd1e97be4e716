//! `report.html` in a real browser: headless Chromium (Debian's `chromium`, or `NAS_CHROMIUM`)
//! opens a copy of the page with a probe added (an error collector first in `<head>`, a script
//! last in `<body>` that clicks column headers), and its DOM is read back with `--dump-dom`.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the probe saw.
#[derive(Debug, serde::Deserialize)]
pub struct Probe {
    /// Console errors and uncaught exceptions.
    pub errors: Vec<String>,
    /// The winner section's architecture.
    pub winner: Option<String>,
    /// The `params` column of the candidates table: as rendered, after one click, after two.
    pub before: Vec<String>,
    pub ascending: Vec<String>,
    pub descending: Vec<String>,
    /// Inline SVG plots.
    pub plots: usize,
}

const HEAD: &str = r#"<script>window.__errors=[];(function(){var e=console.error;console.error=function(){window.__errors.push(Array.prototype.join.call(arguments," "));e.apply(console,arguments);};window.addEventListener("error",function(ev){window.__errors.push(String(ev.message));});})();</script>"#;

const TAIL: &str = r##"<script>(function(){
var t=document.getElementById("candidates-table");var heads=t.tHead.rows[0].cells;var col=-1;
for(var i=0;i<heads.length;i++){if(heads[i].dataset.key==="params"){col=i;}}
var column=function(){return Array.prototype.map.call(t.tBodies[0].rows,function(r){return r.cells[col].textContent;});};
var out={errors:window.__errors,before:column()};
heads[col].click();out.ascending=column();heads[col].click();out.descending=column();
var w=document.querySelector("#winner code");out.winner=w?w.textContent:null;
out.plots=document.querySelectorAll("#plots svg").length;
var pre=document.createElement("pre");pre.id="probe";pre.textContent=JSON.stringify(out);document.body.appendChild(pre);
})();</script>"##;

/// The browser: `NAS_CHROMIUM`, else `chromium` on the PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("NAS_CHROMIUM") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("no chromium on the PATH: scripts/install-tools.sh installs Debian's chromium (or set NAS_CHROMIUM)")
        })
}

/// Headless Chromium with a fresh profile under `dir`, nothing fetched in the background.
fn headless(dir: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()));
    cmd
}

/// Opens `page` (a copy with the probe) in headless Chromium and returns what the probe saw.
pub fn probe(page: &Path) -> Probe {
    let html = std::fs::read_to_string(page).unwrap();
    let probed = html
        .replacen("<head>", &format!("<head>{HEAD}"), 1)
        .replacen("</body>", &format!("{TAIL}</body>"), 1);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("probed.html");
    std::fs::write(&copy, probed).unwrap();
    let out = headless(dir.path())
        .args(["--no-first-run", "--virtual-time-budget=5000"])
        .arg("--dump-dom")
        .arg(format!("file://{}", copy.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let text = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|t| t.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!("the probe wrote nothing (the page's script failed?):\n{stderr}")
        });
    let json = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// `--screenshot` of `page` (for a person to look at).
pub fn screenshot(page: &Path, png: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let out = headless(dir.path())
        .args(["--hide-scrollbars", "--window-size=1280,1800"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
