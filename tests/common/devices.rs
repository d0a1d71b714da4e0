//! Linked devices (issue 8): `mailnode device link` run in the background
//! and `mailnode device join`, as a user runs them.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Node, describe, free_port, value_of, wait_until};

const WAIT: Duration = Duration::from_secs(90);

/// A running `mailnode device link`, its output collected as it comes.
pub struct Linking {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Linking {
    pub fn start(node: &Node) -> Linking {
        let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
        let mut child = node
            .command()
            .args(["device", "link", "--listen", &listen, "--timeout", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start mailnode device link");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut text = output.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        Linking { child, output }
    }

    pub fn text(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pairing code, once it is shown.
    pub fn code(&mut self) -> String {
        let mut code = None;
        wait_until(WAIT, "the pairing code", || {
            code = value_of(&self.text(), "pairing-code");
            if code.is_none()
                && let Ok(Some(status)) = self.child.try_wait()
            {
                panic!("device link exited ({status}): {}", self.text());
            }
            code.is_some()
        });
        code.expect("code")
    }

    /// Waits for the command to end.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader threads end with the pipes.
                let text = self.text();
                return (status, text);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("device link did not end: {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Linking {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mailnode device join CODE` into `node`'s home.
pub fn join(node: &Node, code: &str) -> std::process::Output {
    node.cli(&["device", "join", code, "--secret-store", "passphrase"])
}

/// The device PeerIds `device list` prints, and which is this one.
pub fn devices(node: &Node) -> (Vec<String>, String) {
    let text = node.cli_ok(&["device", "list"]);
    let mut all = Vec::new();
    let mut this = String::new();
    for line in text.lines() {
        let peer = line.split('\t').next().expect("peer").to_string();
        if line.ends_with("\tthis device") {
            this = peer.clone();
        }
        all.push(peer);
    }
    (all, this)
}

/// Links a new device to `node` (stopped) and returns it with its PeerId.
pub fn link_new_device(node: &Node, name: &str) -> (Node, String) {
    let mut link = Linking::start(node);
    let code = link.code();
    let device = Node::without_home(name, &node.email);
    let out = join(&device, &code);
    assert!(
        out.status.success(),
        "join: {}\nlink: {}",
        describe(&out),
        link.text()
    );
    let (status, text) = link.finish();
    assert!(status.success(), "link: {text}");
    let (_, peer) = devices(&device);
    (device, peer)
}
