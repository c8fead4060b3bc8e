//! An SMTP sink on a loopback port: the `mailin` SMTP state machine over a
//! tokio socket, plain SMTP (no STARTTLS offered), recording every message
//! it accepts — envelope and raw data — in memory.
//!
//! With [`FakeSmtpConfig::auth`] set it advertises `AUTH PLAIN LOGIN` (over
//! plaintext: loopback testing only), requires authentication before
//! `MAIL` (530 otherwise) and accepts only those credentials (535).
//!
//! Failure controls: [`FakeSmtp::fail_rcpt`] and [`FakeSmtp::fail_data`]
//! answer the next `RCPT TO` / end of `DATA` with a chosen 4xx or 5xx code
//! (a refused `DATA` also ends the connection);
//! [`FakeSmtp::set_hang`] delays the greeting of new connections;
//! [`FakeSmtp::set_reply_delay`] records a message but delays its `250`.
//!
//! Test and demo tooling: in memory, simple, not product code.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Longest command or data line read (longer lines end the connection).
const MAX_LINE: u64 = 1 << 20;

/// How the sink starts.
#[derive(Debug, Clone, Default)]
pub struct FakeSmtpConfig {
    /// `(user, password)`: require and accept only these credentials.
    pub auth: Option<(String, String)>,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// `MAIL FROM` reverse path.
    pub from: String,
    /// `RCPT TO` forward paths.
    pub to: Vec<String>,
    /// The raw message (headers and body) as sent, dot-unstuffed.
    pub data: String,
    /// The user who authenticated on the connection.
    pub auth_user: Option<String>,
}

impl ReceivedMail {
    /// The first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.trim().eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_string());
            }
        }
        found
    }

    /// The body: everything after the first empty line.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<ReceivedMail>,
    fail_rcpt: Option<(u32, u16)>,
    fail_data: Option<(u32, u16)>,
    hang: Duration,
    reply_delay: Duration,
    connections: u32,
    auth_failures: u32,
}

#[derive(Debug)]
struct Shared {
    auth: Option<(String, String)>,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn take(slot: &mut Option<(u32, u16)>) -> Option<u16> {
    let (n, code) = (*slot)?;
    *slot = (n > 1).then_some((n.saturating_sub(1), code));
    Some(code)
}

/// The running sink. Stops when dropped or on [`FakeSmtp::shutdown`].
#[derive(Debug)]
pub struct FakeSmtp {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

/// Starts the sink on `127.0.0.1` on a free port.
pub async fn start(config: FakeSmtpConfig) -> std::io::Result<FakeSmtp> {
    let shared = Arc::new(Shared {
        auth: config.auth,
        inner: Mutex::new(Inner::default()),
    });
    let mut builder = SessionBuilder::new("fake-smtp.ladder.test");
    if shared.auth.is_some() {
        builder
            .enable_auth(AuthMechanism::Plain)
            .enable_auth(AuthMechanism::Login)
            .insecure_enable_plaintext_auth();
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let accepting = shared.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let shared = accepting.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = serve(stream, peer.ip(), &builder, shared).await;
            });
        }
    });
    Ok(FakeSmtp {
        addr,
        shared,
        task: Some(task),
    })
}

impl FakeSmtp {
    /// `127.0.0.1`: the adapter's `host`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The adapter's `port`.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every accepted message, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().received.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.shared.lock().connections
    }

    /// Failed AUTH attempts.
    pub fn auth_failures(&self) -> u32 {
        self.shared.lock().auth_failures
    }

    /// The next `n` `RCPT TO` commands are answered `code` (e.g. 450, 550).
    pub fn fail_rcpt(&self, n: u32, code: u16) {
        self.shared.lock().fail_rcpt = (n > 0).then_some((n, code));
    }

    /// The next `n` messages are refused with `code` (e.g. 451, 554) at the
    /// end of `DATA`, and not recorded.
    pub fn fail_data(&self, n: u32, code: u16) {
        self.shared.lock().fail_data = (n > 0).then_some((n, code));
    }

    /// New connections wait this long before the greeting
    /// (`Duration::ZERO`: greet at once).
    pub fn set_hang(&self, hang: Duration) {
        self.shared.lock().hang = hang;
    }

    /// Messages accepted from now on are recorded at once but answered
    /// (`250` to the end of `DATA`) only after `delay`: the window in which
    /// a sender that dies has handed the message over without knowing it.
    pub fn set_reply_delay(&self, delay: Duration) {
        self.shared.lock().reply_delay = delay;
    }

    /// Stops accepting connections.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the connection loop needs to know about the session.
#[derive(Debug, Default)]
struct Flags {
    authenticated: AtomicBool,
    /// A message was refused at the end of DATA: close after the reply
    /// (mailin would otherwise stay in its DATA state).
    close_after_reply: AtomicBool,
    /// A message was accepted: its reply waits for the reply delay.
    accepted: AtomicBool,
}

/// One connection's session state.
struct Session {
    shared: Arc<Shared>,
    flags: Arc<Flags>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    auth_user: Option<String>,
}

impl Session {
    fn check(&mut self, user: &str, password: &str) -> Response {
        let ok = self
            .shared
            .auth
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password);
        if ok {
            self.auth_user = Some(user.to_string());
            self.flags.authenticated.store(true, Ordering::SeqCst);
            mailin::response::AUTH_OK
        } else {
            self.shared.lock().auth_failures += 1;
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

impl Handler for Session {
    fn rcpt(&mut self, _to: &str) -> Response {
        match take(&mut self.shared.lock().fail_rcpt) {
            Some(code) => Response::custom(code, "injected failure".into()),
            None => mailin::response::OK,
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let data = std::mem::take(&mut self.data);
        let mut inner = self.shared.lock();
        if let Some(code) = take(&mut inner.fail_data) {
            self.flags.close_after_reply.store(true, Ordering::SeqCst);
            return Response::custom(code, "injected failure".into());
        }
        inner.received.push(ReceivedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&data).into_owned(),
            auth_user: self.auth_user.clone(),
        });
        self.flags.accepted.store(true, Ordering::SeqCst);
        mailin::response::OK
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> Response {
        self.check(authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.check(username, password)
    }
}

async fn serve(
    stream: TcpStream,
    peer: IpAddr,
    builder: &SessionBuilder,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let hang = {
        let mut inner = shared.lock();
        inner.connections += 1;
        inner.hang
    };
    if !hang.is_zero() {
        tokio::time::sleep(hang).await;
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let flags = Arc::new(Flags::default());
    let auth_required = shared.auth.is_some();
    let delays = shared.clone();
    let mut session = builder.build(
        peer,
        Session {
            shared,
            flags: flags.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
            auth_user: None,
        },
    );
    let mut out = Vec::new();
    session.greeting().write_to(&mut out)?;
    write.write_all(&out).await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 || !line.ends_with(b"\n") {
            return Ok(());
        }
        // A server requiring AUTH answers MAIL before it with 530 (mailin
        // says 503).
        if auth_required
            && !flags.authenticated.load(Ordering::SeqCst)
            && line
                .get(..5)
                .is_some_and(|c| c.eq_ignore_ascii_case(b"MAIL "))
        {
            out.clear();
            mailin::response::AUTHENTICATION_REQUIRED.write_to(&mut out)?;
            write.write_all(&out).await?;
            continue;
        }
        let response = session.process(&line);
        if flags.accepted.swap(false, Ordering::SeqCst) {
            let delay = delays.lock().reply_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        if flags.close_after_reply.load(Ordering::SeqCst) {
            out.clear();
            response.write_to(&mut out)?;
            write.write_all(&out).await?;
            let _ = write.shutdown().await;
            return Ok(());
        }
        match response.action {
            Action::NoReply => {}
            Action::Reply => {
                out.clear();
                response.write_to(&mut out)?;
                write.write_all(&out).await?;
            }
            // Close, or a TLS upgrade the sink never offers.
            Action::Close | Action::UpgradeTls => {
                out.clear();
                response.write_to(&mut out)?;
                write.write_all(&out).await?;
                let _ = write.shutdown().await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_and_body() {
        let mail = ReceivedMail {
            from: "a@x".into(),
            to: vec!["b@y".into()],
            data: "Subject: Hello\r\n there\r\nFrom: a@x\r\n\r\nBody line\r\n".into(),
            auth_user: None,
        };
        assert_eq!(mail.header("subject").as_deref(), Some("Hello there"));
        assert_eq!(mail.header("From").as_deref(), Some("a@x"));
        assert_eq!(mail.header("To"), None);
        assert_eq!(mail.body(), "Body line\r\n");
    }
}
