//! A pseudo-terminal for driving the interactive prompt the way a person
//! does: wait for the prompt, type a line, read what came back.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    output: mpsc::Receiver<Vec<u8>>,
    /// Everything read and not yet matched by `expect`.
    pending: String,
    /// Bytes of an escape sequence or character split across reads.
    carry: Vec<u8>,
    pub child: Child,
}

impl Pty {
    /// Starts `cmd` with a terminal as its stdin, stdout and stderr.
    pub fn spawn(mut cmd: Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors into the given integers.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        let slave_fd = slave.as_raw_fd();
        // SAFETY: in the child, before exec: make the terminal the
        // controlling one of a new session, as a shell would.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                libc::setsid();
                libc::ioctl(slave_fd, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child closed the terminal.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Pty {
            master,
            output,
            pending: String::new(),
            carry: Vec::new(),
            child,
        }
    }

    /// Waits (bounded) until `what` appears; returns the output up to and
    /// including it, terminal escapes removed.
    pub fn expect(&mut self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = self.pending.find(what) {
                let upto = self.pending[..i + what.len()].to_string();
                self.pending.drain(..i + what.len());
                return upto;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "waited 60 s for {what:?}; the terminal shows {:?}",
                self.pending
            );
            match self
                .output
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(bytes) => {
                    self.carry.extend_from_slice(&bytes);
                    let (text, used) = strip_escapes(&self.carry);
                    self.pending.push_str(&text);
                    self.carry.drain(..used);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the terminal closed while waiting for {what:?}: {:?}",
                        self.pending
                    )
                }
            }
        }
    }

    /// Types a line and presses Enter.
    pub fn send_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
        self.master.flush().unwrap();
    }

    /// Sends a control character (Ctrl-C is `0x03`, Ctrl-D `0x04`).
    pub fn send_control(&mut self, byte: u8) {
        self.master.write_all(&[byte]).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits (bounded) for the program to exit; returns its status code.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the program did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops ANSI escape sequences (cursor moves, bracketed-paste toggles) and
/// carriage returns, leaving the text a person reads. Returns the text and
/// how many bytes it used: an unfinished sequence or character at the end
/// waits for the next read.
fn strip_escapes(bytes: &[u8]) -> (String, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x1b => {
                let Some(&next) = bytes.get(i + 1) else { break };
                if next != b'[' {
                    i += 2;
                    continue;
                }
                // Parameters, then one final byte in @..~.
                let Some(end) = bytes[i + 2..]
                    .iter()
                    .position(|b| (0x40..=0x7e).contains(b))
                else {
                    break;
                };
                i += 2 + end + 1;
            }
            b'\r' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Keep a split UTF-8 character for the next read.
    let text = match std::str::from_utf8(&out) {
        Ok(t) => t.to_string(),
        Err(e) if e.error_len().is_none() => {
            let valid = e.valid_up_to();
            let tail = out.len() - valid;
            return (
                String::from_utf8_lossy(&out[..valid]).into_owned(),
                i - tail,
            );
        }
        Err(_) => String::from_utf8_lossy(&out).into_owned(),
    };
    (text, i)
}
