//! A small IMAP client for the provider's account: connect with TLS
//! (implicit or STARTTLS), LOGIN, run a command and collect its untagged
//! responses up to the tagged status.
//!
//! It never sends a byte in the clear after the greeting except `STARTTLS`
//! itself, and it never logs what it sends (the LOGIN line holds the
//! password) nor message contents. Lines are bounded; literals sent by the
//! server are read by their announced length, never parsed as commands.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::{Endpoint, GatewayConfig, TlsMode};
use imap_bridge::imap::quoted;

use super::secret::Password;

/// How long one network step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response line accepted (RFC 7162 §4 recommends clients accept
/// at least 8192 octets; we allow more).
const MAX_LINE: u64 = 64 * 1024;
/// Largest literal accepted from the server (one message).
const MAX_LITERAL: usize = 64 * 1024 * 1024;

/// The tagged status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
}

/// One untagged response: its line (literals replaced by their bytes in
/// `literals`, in order).
#[derive(Debug, Default)]
pub struct Untagged {
    /// The response line(s), without the `* ` and CRLF.
    pub line: String,
    /// The literals it carried.
    pub literals: Vec<Vec<u8>>,
}

/// What SELECT said about a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// Its UIDNEXT, when the server sent it (RFC 3501 requires it).
    pub uidnext: Option<u32>,
}

/// A command's outcome.
#[derive(Debug)]
pub struct Reply {
    /// The untagged responses before the tagged one.
    pub untagged: Vec<Untagged>,
    /// The tagged status.
    pub status: Status,
    /// The status text, cleaned for display.
    pub text: String,
}

/// A logged-in or not-yet-logged-in connection to the provider.
pub struct ImapClient {
    stream: BufReader<TlsStream<TcpStream>>,
    tag: u32,
    /// The part of a line read so far; kept here so that a read cancelled
    /// by a timeout (IDLE) loses nothing.
    pending: Vec<u8>,
    /// An `EXISTS` came with the reply of a command since the last
    /// SELECT: mail arrived while a pass was running. The server does not
    /// announce it again, so the next IDLE must not wait for it.
    exists_since_select: bool,
}

impl std::fmt::Debug for ImapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapClient").finish_non_exhaustive()
    }
}

/// Keeps a server's text printable and short before it is shown or logged.
pub fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_string()
}

async fn step<T>(what: &str, fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    timeout(STEP_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer within {} s", STEP_TIMEOUT.as_secs()))?
}

async fn read_plain_line(reader: &mut BufReader<TcpStream>) -> anyhow::Result<String> {
    let mut line = Vec::new();
    (&mut *reader)
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        bail!("the server closed the connection");
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

impl ImapClient {
    /// Connects to the configured IMAP server and reads its greeting.
    pub async fn connect(config: &GatewayConfig) -> anyhow::Result<ImapClient> {
        ImapClient::connect_to(&config.imap, config.tls, config.insecure_local).await
    }

    /// Connects to `endpoint` and reads its greeting. `insecure_local`
    /// (certificates not checked) must only be set for loopback servers.
    pub async fn connect_to(
        endpoint: &Endpoint,
        tls: TlsMode,
        insecure_local: bool,
    ) -> anyhow::Result<ImapClient> {
        let tcp = step("connect", async {
            TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                .await
                .with_context(|| format!("cannot connect to {endpoint}"))
        })
        .await?;
        let tcp = match tls {
            TlsMode::Implicit => tcp,
            TlsMode::Starttls => step("STARTTLS", starttls(tcp)).await?,
        };
        let connector = TlsConnector::from(super::tls::client_config(insecure_local)?);
        let name = super::tls::server_name(&endpoint.host)?;
        let stream = step("TLS handshake", async {
            connector.connect(name, tcp).await.map_err(|err| {
                anyhow::anyhow!(
                    "TLS with {endpoint} failed: {err} (a certificate the system roots do not \
                     vouch for, or a name that does not match, is refused; nothing was sent)"
                )
            })
        })
        .await?;
        let mut client = ImapClient {
            stream: BufReader::new(stream),
            tag: 0,
            pending: Vec::new(),
            exists_since_select: false,
        };
        if tls == TlsMode::Implicit {
            let greeting = step("greeting", client.read_line()).await?;
            if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
                bail!(
                    "{endpoint} did not greet as an IMAP server: {}",
                    clean(&greeting)
                );
            }
        }
        Ok(client)
    }

    /// Reads one line. Cancel-safe: bytes of an unfinished line stay in
    /// `pending` for the next call.
    async fn read_line(&mut self) -> anyhow::Result<String> {
        loop {
            let room = (MAX_LINE as usize).saturating_sub(self.pending.len());
            if room == 0 {
                bail!("the server sent a line longer than {MAX_LINE} bytes");
            }
            let read = (&mut self.stream)
                .take(room as u64)
                .read_until(b'\n', &mut self.pending)
                .await?;
            if self.pending.ends_with(b"\n") {
                let line = std::mem::take(&mut self.pending);
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            if read == 0 {
                bail!("the server closed the connection");
            }
        }
    }

    /// Reads a literal of `len` bytes.
    async fn read_literal(&mut self, len: usize) -> anyhow::Result<Vec<u8>> {
        if len > MAX_LITERAL {
            bail!("the server announced a literal of {len} bytes, more than {MAX_LITERAL}");
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Sends `command` (without tag and CRLF) and collects the reply.
    pub async fn command(&mut self, command: &str) -> anyhow::Result<Reply> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.send_line(&format!("{tag} {command}\r\n")).await?;
        self.collect(&tag).await
    }

    /// Writes `line` (with its CRLF) and flushes it.
    async fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        step("send", async {
            self.stream.get_mut().write_all(line.as_bytes()).await?;
            self.stream.get_mut().flush().await?;
            Ok(())
        })
        .await
    }

    /// Reads responses up to the tagged one for `tag`.
    async fn collect(&mut self, tag: &str) -> anyhow::Result<Reply> {
        let mut untagged = Vec::new();
        loop {
            let line = step("response", self.read_line()).await?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let status = match status.to_ascii_uppercase().as_str() {
                    "OK" => Status::Ok,
                    "NO" => Status::No,
                    "BAD" => Status::Bad,
                    _ => bail!("the server answered with {}", clean(&line)),
                };
                return Ok(Reply {
                    untagged,
                    status,
                    text: clean(text),
                });
            }
            if let Some(rest) = line.strip_prefix("* ") {
                let mut response = Untagged {
                    line: rest.to_string(),
                    literals: Vec::new(),
                };
                // A line ending in {N} announces N bytes of literal, after
                // which the response continues on the next line.
                let mut current = rest.to_string();
                while let Some(len) = literal_len(&current) {
                    let literal = step("literal", self.read_literal(len)).await?;
                    response.literals.push(literal);
                    current = step("response", self.read_line()).await?;
                    response.line.push_str(" \u{0}");
                    response.line.push_str(&current);
                }
                self.exists_since_select |= is_exists(&line);
                untagged.push(response);
            }
            // `+` continuations and anything else are ignored here; commands
            // that need them (IDLE, literals we send) handle them themselves.
        }
    }

    /// Logs in with LOGIN (RFC 3501 §6.2.3), the password as a quoted string
    /// or, when it is not plain ASCII, as a literal.
    pub async fn login(&mut self, user: &str, password: &Password) -> anyhow::Result<()> {
        let user_arg = quoted(user).context("the user name cannot be sent over IMAP")?;
        let reply = match quoted(password.expose()) {
            Some(pass) => self.command(&format!("LOGIN {user_arg} {pass}")).await?,
            None => {
                let pass = password.expose().as_bytes();
                self.tag += 1;
                let tag = format!("m{}", self.tag);
                let head = format!("{tag} LOGIN {user_arg} {{{}}}\r\n", pass.len());
                self.stream.get_mut().write_all(head.as_bytes()).await?;
                self.stream.get_mut().flush().await?;
                let go = step("LOGIN", self.read_line()).await?;
                if !go.starts_with('+') {
                    bail!("the server refused the login: {}", clean(&go));
                }
                self.stream.get_mut().write_all(pass).await?;
                self.stream.get_mut().write_all(b"\r\n").await?;
                self.stream.get_mut().flush().await?;
                self.collect(&tag).await?
            }
        };
        match reply.status {
            Status::Ok => Ok(()),
            _ => bail!("the server refused the login of {user:?}: {}", reply.text),
        }
    }

    /// Says LOGOUT; errors are ignored (the connection is ending anyway).
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }

    /// Which of `wanted` the server lists (one CAPABILITY command).
    pub async fn capabilities<const N: usize>(
        &mut self,
        wanted: [&str; N],
    ) -> anyhow::Result<[bool; N]> {
        let reply = self.command("CAPABILITY").await?;
        Ok(wanted.map(|capability| {
            reply
                .untagged
                .iter()
                .any(|u| super::imap_parse::has_capability(&u.line, capability))
        }))
    }

    /// SELECTs `mailbox`.
    pub async fn select(&mut self, mailbox: &str) -> anyhow::Result<Selected> {
        let name = quoted(mailbox).context("the mailbox name cannot be sent over IMAP")?;
        let reply = self.command(&format!("SELECT {name}")).await?;
        // The SELECT's own EXISTS is the state the caller reads from here.
        self.exists_since_select = false;
        if reply.status != Status::Ok {
            bail!("the server refused to open {mailbox:?}: {}", reply.text);
        }
        let lines = || reply.untagged.iter().map(|u| u.line.as_str());
        // RFC 9051 §7.1: UIDVALIDITY may come in the tagged OK.
        let tagged = format!("OK {}", reply.text);
        let uidvalidity = super::imap_parse::uidvalidity(lines())
            .or_else(|| super::imap_parse::uidvalidity([tagged.as_str()]))
            .with_context(|| format!("the server sent no UIDVALIDITY for {mailbox:?}"))?;
        Ok(Selected {
            uidvalidity,
            uidnext: super::imap_parse::uidnext(lines()),
        })
    }

    /// The highest UID in the selected mailbox (`UID FETCH *`), `None` when
    /// it is empty.
    pub async fn highest_uid(&mut self) -> anyhow::Result<Option<u32>> {
        let reply = self.command("UID FETCH * (UID)").await?;
        Ok(reply
            .untagged
            .iter()
            .filter_map(|u| super::imap_parse::fetch_uid_size(&u.line))
            .map(|(uid, _)| uid)
            .max())
    }

    /// UIDs and sizes of the messages with UID `from` or higher, oldest
    /// first. (`from:*` always matches the highest UID, RFC 9051 §6.4.8,
    /// so it is filtered.)
    pub async fn uids_from(&mut self, from: u32) -> anyhow::Result<Vec<(u32, Option<u64>)>> {
        let reply = self
            .command(&format!("UID FETCH {from}:* (UID RFC822.SIZE)"))
            .await?;
        if reply.status != Status::Ok {
            bail!("the server refused UID FETCH: {}", reply.text);
        }
        let mut found: Vec<(u32, Option<u64>)> = reply
            .untagged
            .iter()
            .filter_map(|u| super::imap_parse::fetch_uid_size(&u.line))
            .filter(|(uid, _)| *uid >= from)
            .collect();
        found.sort_unstable_by_key(|(uid, _)| *uid);
        found.dedup_by_key(|(uid, _)| *uid);
        Ok(found)
    }

    /// The raw message with `uid`, without setting \Seen (BODY.PEEK).
    pub async fn fetch_message(&mut self, uid: u32) -> anyhow::Result<Option<Vec<u8>>> {
        let reply = self
            .command(&format!("UID FETCH {uid} (UID BODY.PEEK[])"))
            .await?;
        if reply.status != Status::Ok {
            bail!("the server refused to send message {uid}: {}", reply.text);
        }
        Ok(reply
            .untagged
            .into_iter()
            .find(|u| super::imap_parse::fetch_uid_size(&u.line).is_some_and(|(n, _)| n == uid))
            .and_then(|u| u.literals.into_iter().next()))
    }

    /// Moves message `uid` to `folder`: UID MOVE (RFC 6851) when offered,
    /// else UID COPY + STORE \Deleted + UID EXPUNGE (RFC 4315).
    pub async fn move_message(
        &mut self,
        uid: u32,
        folder: &str,
        has_move: bool,
    ) -> anyhow::Result<()> {
        let target = quoted(folder).context("the folder name cannot be sent over IMAP")?;
        let steps = if has_move {
            vec![format!("UID MOVE {uid} {target}")]
        } else {
            vec![
                format!("UID COPY {uid} {target}"),
                format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                format!("UID EXPUNGE {uid}"),
            ]
        };
        for command in steps {
            let reply = self.command(&command).await?;
            if reply.status != Status::Ok {
                bail!("moving message {uid} to {folder:?} failed: {}", reply.text);
            }
        }
        Ok(())
    }
}

/// Why [`ImapClient::idle`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server announced new messages (`EXISTS`).
    NewMail,
    /// `max` passed without news (RFC 2177: re-issue IDLE at least every
    /// 29 minutes).
    Timeout,
}

impl ImapClient {
    /// Waits in IDLE (RFC 2177) until the selected mailbox gets new
    /// messages or `max` passes, then ends IDLE with DONE. Returns
    /// [`IdleEnd::NewMail`] at once, without IDLE, when an `EXISTS` came
    /// with a command's reply since the last SELECT.
    pub async fn idle(&mut self, max: Duration) -> anyhow::Result<IdleEnd> {
        if std::mem::take(&mut self.exists_since_select) {
            // Announced during the last pass, after its search: the server
            // will not say it again in IDLE.
            return Ok(IdleEnd::NewMail);
        }
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.send_line(&format!("{tag} IDLE\r\n")).await?;
        let mut end = IdleEnd::Timeout;
        // Untagged responses may come before the continuation.
        loop {
            let line = step("IDLE", self.read_line()).await?;
            if line.starts_with('+') {
                break;
            }
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                bail!("the server refused IDLE: {}", clean(rest));
            }
            if is_exists(&line) {
                end = IdleEnd::NewMail;
            }
        }
        let deadline = tokio::time::Instant::now() + max;
        while end == IdleEnd::Timeout {
            let line = match tokio::time::timeout_at(deadline, self.read_line()).await {
                Err(_) => break,
                Ok(line) => line?,
            };
            if line.starts_with("* BYE") {
                bail!("the server ended the connection: {}", clean(&line));
            }
            if is_exists(&line) {
                end = IdleEnd::NewMail;
            }
        }
        self.send_line("DONE\r\n").await?;
        let reply = self.collect(&tag).await?;
        if reply.status != Status::Ok {
            bail!("IDLE ended with an error: {}", reply.text);
        }
        Ok(end)
    }

    /// UIDs of the messages that arrived on or after `date`
    /// (`UID SEARCH SINCE`, day granularity), oldest first.
    pub async fn uids_since(&mut self, date: chrono::NaiveDate) -> anyhow::Result<Vec<u32>> {
        let reply = self
            .command(&format!("UID SEARCH SINCE {}", date.format("%-d-%b-%Y")))
            .await?;
        if reply.status != Status::Ok {
            bail!("the server refused UID SEARCH: {}", reply.text);
        }
        let mut uids: Vec<u32> = reply
            .untagged
            .iter()
            .filter_map(|u| u.line.strip_prefix("SEARCH"))
            .flat_map(|rest| rest.split_ascii_whitespace().filter_map(|n| n.parse().ok()))
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }
}

/// A folder of the account (LIST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Its name on the wire (modified UTF-7), for SELECT.
    pub wire: String,
    /// Its hierarchy delimiter, if any.
    pub delimiter: Option<char>,
    /// `\Noselect` or `\NonExistent`: it holds no messages.
    pub noselect: bool,
}

/// One message of a batch fetch.
#[derive(Debug)]
pub struct Fetched {
    /// Its UID.
    pub uid: u32,
    /// Its flags (`\Recent` left out).
    pub flags: Vec<String>,
    /// Its INTERNALDATE: Unix seconds and the zone offset in minutes.
    pub internal_date: Option<(i64, i32)>,
    /// The message.
    pub body: Vec<u8>,
}

impl ImapClient {
    /// Every folder of the account (`LIST "" "*"`).
    pub async fn folders(&mut self) -> anyhow::Result<Vec<Folder>> {
        let reply = self.command("LIST \"\" \"*\"").await?;
        if reply.status != Status::Ok {
            bail!("the server refused LIST: {}", reply.text);
        }
        Ok(reply
            .untagged
            .iter()
            .filter_map(|u| super::imap_parse::list_line(&u.line, &u.literals))
            .map(|(wire, delimiter, noselect)| Folder {
                wire,
                delimiter,
                noselect,
            })
            .collect())
    }

    /// Fetches `uids` (UIDs of the selected mailbox) with their flags and
    /// INTERNALDATE, without setting `\Seen`.
    pub async fn fetch_batch(&mut self, uids: &[u32]) -> anyhow::Result<Vec<Fetched>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        let reply = self
            .command(&format!(
                "UID FETCH {} (UID FLAGS INTERNALDATE BODY.PEEK[])",
                set.join(",")
            ))
            .await?;
        if reply.status != Status::Ok {
            bail!("the server refused UID FETCH: {}", reply.text);
        }
        Ok(reply
            .untagged
            .into_iter()
            .filter_map(|u| {
                let (uid, _) = super::imap_parse::fetch_uid_size(&u.line)?;
                let body = u.literals.into_iter().next()?;
                Some(Fetched {
                    uid,
                    flags: super::imap_parse::fetch_flags(&u.line),
                    internal_date: super::imap_parse::fetch_internal_date(&u.line),
                    body,
                })
            })
            .filter(|f| uids.contains(&f.uid))
            .collect())
    }
}

/// Whether `line` is an untagged `* N EXISTS`.
fn is_exists(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    words.next() == Some("*")
        && words.next().is_some_and(|n| n.parse::<u32>().is_ok())
        && words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("EXISTS"))
}

/// The length of the literal a response line ends with, if any.
fn literal_len(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    line[open + 1..line.len() - 1].parse().ok()
}

/// Reads the plain greeting, asks for STARTTLS and returns the socket ready
/// for the handshake. Anything but a tagged OK is an error: no fallback to
/// plaintext.
async fn starttls(tcp: TcpStream) -> anyhow::Result<TcpStream> {
    let mut reader = BufReader::new(tcp);
    let greeting = read_plain_line(&mut reader).await?;
    if !greeting.starts_with("* OK") {
        bail!(
            "the server did not greet as an IMAP server: {}",
            clean(&greeting)
        );
    }
    reader.get_mut().write_all(b"s0 STARTTLS\r\n").await?;
    loop {
        let line = read_plain_line(&mut reader).await?;
        if let Some(rest) = line.strip_prefix("s0 ") {
            if rest.to_ascii_uppercase().starts_with("OK") {
                break;
            }
            bail!(
                "the server refused STARTTLS ({}); mailnode does not log in without TLS",
                clean(rest)
            );
        }
    }
    if !reader.buffer().is_empty() {
        bail!("the server sent data before the TLS handshake (STARTTLS injection?)");
    }
    Ok(reader.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"b\\c").as_deref(), Some("\"a\\\"b\\\\c\""));
        assert_eq!(quoted("pässword"), None);
        assert_eq!(quoted("line\r\nbreak"), None);
    }

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len("1 FETCH (UID 4 BODY[] {310}"), Some(310));
        assert_eq!(literal_len("1 FETCH (UID 4)"), None);
        assert_eq!(literal_len("x {abc}"), None);
    }

    #[test]
    fn exists_lines() {
        assert!(is_exists("* 23 EXISTS"));
        assert!(is_exists("* 1 exists"));
        assert!(!is_exists("* 23 EXPUNGE"));
        assert!(!is_exists("* OK Still here"));
    }

    /// A TLS IMAP server on loopback that plays `script`: for each step,
    /// the line it expects from the client, then what it answers.
    async fn scripted_server(
        script: Vec<(&'static str, &'static str)>,
    ) -> (u16, tokio::task::JoinHandle<()>) {
        let (cert, key) = imap_bridge::tls::self_signed(&[]).expect("certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(
            imap_bridge::tls::server_config(&cert, &key).expect("config"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let tls = acceptor.accept(tcp).await.expect("TLS");
            let mut tls = BufReader::new(tls);
            tls.get_mut()
                .write_all(b"* OK scripted\r\n")
                .await
                .expect("greeting");
            for (expected, answer) in script {
                let mut line = String::new();
                timeout(Duration::from_secs(10), tls.read_line(&mut line))
                    .await
                    .expect("the client's next line in time")
                    .expect("read");
                assert_eq!(line.trim_end(), expected, "what the client sent");
                tls.get_mut()
                    .write_all(answer.as_bytes())
                    .await
                    .expect("answer");
                tls.get_mut().flush().await.expect("flush");
            }
        });
        (port, server)
    }

    #[tokio::test]
    async fn mail_announced_during_a_pass_ends_the_next_idle_at_once() {
        let (port, server) = scripted_server(vec![
            (
                "m1 SELECT \"INBOX\"",
                "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nm1 OK [READ-WRITE] done\r\n",
            ),
            // A message arrives after the pass's search: its EXISTS comes
            // with the reply to a later command, and never again.
            ("m2 NOOP", "* 2 EXISTS\r\nm2 OK done\r\n"),
            // So the client must not IDLE now: its next line is a command.
            (
                "m3 SELECT \"INBOX\"",
                "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nm3 OK [READ-WRITE] done\r\n",
            ),
            // After a new SELECT it does IDLE, and waits for news.
            ("m4 IDLE", "+ idling\r\n* 3 EXISTS\r\n"),
            ("DONE", "m4 OK idle done\r\n"),
        ])
        .await;
        let endpoint = Endpoint {
            host: "127.0.0.1".into(),
            port,
        };
        let mut client = ImapClient::connect_to(&endpoint, TlsMode::Implicit, true)
            .await
            .expect("connect");
        client.select("INBOX").await.expect("select");
        client.command("NOOP").await.expect("noop");
        let end = timeout(Duration::from_secs(5), client.idle(Duration::from_secs(60)))
            .await
            .expect("no wait for news already announced")
            .expect("idle");
        assert_eq!(end, IdleEnd::NewMail);
        client.select("INBOX").await.expect("select again");
        let end = timeout(
            Duration::from_secs(10),
            client.idle(Duration::from_secs(60)),
        )
        .await
        .expect("the EXISTS in IDLE ends it")
        .expect("idle");
        assert_eq!(end, IdleEnd::NewMail);
        server.await.expect("the script ran to its end");
    }

    #[test]
    fn server_text_is_cleaned() {
        assert_eq!(clean("[AUTH] bad\r\x1b[31m"), "[AUTH] bad  [31m");
        assert!(clean(&"x".repeat(1000)).chars().count() <= 301);
    }
}
