//! `quorumhouse client`: clickhouse-client over gRPC.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use qh_client::{Client, ClientError, QueryOptions, QueryOutput};
use qh_types::ErrorCode;

use crate::output::{choose_format, exit_status, print_error, print_result};
use crate::progress::ProgressDisplay;
use crate::repl::{Line, Prompt};
use qh_types::formats::FormatOptions;

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Server to connect to; repeat it (or separate with commas) for
    /// fail-over: `host` or `host:port`, tried in order.
    #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
    pub host: Vec<String>,
    /// Port of hosts given without one (default 9001, with --secure 9440).
    #[arg(long)]
    pub port: Option<u16>,
    /// Connect over TLS (a server's secure_port), checking its certificate.
    #[arg(long, short = 's')]
    pub secure: bool,
    /// The CA certificate (PEM) that signed the server's (with --secure;
    /// default: the system's trusted roots).
    #[arg(long)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Seconds each host gets to accept the connection before the next is tried.
    #[arg(long, default_value_t = 2)]
    pub connect_timeout: u64,
    /// SQL to run (several statements separated by `;`); interactive when
    /// omitted on a terminal, read from stdin otherwise.
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    /// A file of statements to run.
    #[arg(long)]
    pub queries_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub common: crate::output::CommonArgs,
    /// Id of the statement (shows in `system.processes`; `KILL QUERY WHERE
    /// query_id = '...'` stops it).
    #[arg(long = "query_id", alias = "query-id")]
    pub query_id: Option<String>,
    /// User to run as (default: `default`).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// The user's password (visible in the process list: prefer
    /// `--ask-password`).
    #[arg(long)]
    pub password: Option<String>,
    /// Read the password from the terminal without echoing it.
    #[arg(long, conflicts_with = "password")]
    pub ask_password: bool,
}

fn fail(e: &ClientError) -> ExitCode {
    let code = ErrorCode::from_i32(e.code()).unwrap_or(ErrorCode::UNKNOWN_EXCEPTION);
    match e {
        ClientError::Server { message, .. } => print_error(code, message),
        other => print_error(code, &other.to_string()),
    }
    ExitCode::from(exit_status(code))
}

pub fn run(args: ClientArgs) -> ExitCode {
    let rt = match crate::output::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(run_async(args))
}

/// Whether a statement reads its INSERT data from stdin.
fn wants_stdin(sql: &str) -> bool {
    qh_sql_lex::insert_format(sql).is_some_and(|f| f.inline.is_none())
}

fn options(args: &ClientArgs) -> QueryOptions {
    match &args.query_id {
        Some(id) => QueryOptions::new().query_id(id),
        None => QueryOptions::new(),
    }
}

/// Size of stdin when it is a regular file (a redirect), for the progress bar.
fn stdin_file_size() -> Option<u64> {
    std::fs::metadata("/proc/self/fd/0")
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

async fn run_one(
    client: &mut Client,
    sql: &str,
    args: &ClientArgs,
    stdin_free: &mut bool,
) -> Result<(), ClientError> {
    let started = Instant::now();
    let reads_stdin = *stdin_free && wants_stdin(sql);
    let progress = ProgressDisplay::new(if reads_stdin { stdin_file_size() } else { None });
    client.on_progress(progress.callback());
    let result = if reads_stdin {
        *stdin_free = false;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let sent = progress.input_counter();
        // stdin is read on its own thread; the gRPC stream pulls chunks.
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut buf = vec![0u8; qh_client::INPUT_CHUNK];
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(buf).is_err() {
                            return;
                        }
                        sent.inc(n as u64);
                    }
                }
            }
        });
        client
            .run_with(
                sql,
                Some(tokio_stream::wrappers::ReceiverStream::new(rx)),
                options(args),
            )
            .await
    } else {
        client.query_with(sql, options(args)).await
    };
    progress.finish();
    let out: QueryOutput = result?;
    if args.common.time {
        eprintln!("{:.3}", started.elapsed().as_secs_f64());
    }
    if args.common.stats {
        let s = &out.summary;
        crate::output::print_stats(
            s.read_rows,
            s.read_bytes,
            (s.granules_read, s.granules_total),
            s.written_rows,
            s.elapsed_micros as f64 / 1e6,
        );
    }
    if let Some(schema) = &out.schema {
        let stmt_format = (!out.summary.format.is_empty()).then_some(out.summary.format.as_str());
        let fmt = choose_format(stmt_format, args.common.format.as_deref());
        let mut settings = qh_types::Settings::new();
        for (k, v) in &out.summary.format_settings {
            settings.set(k, v.clone());
        }
        let opts = FormatOptions::from_settings(&settings).unwrap_or_default();
        print_result(
            &fmt,
            opts,
            schema.clone(),
            &out.batches,
            out.totals.as_ref(),
        )
        .map_err(|(code, message)| ClientError::Server {
            code: code as i32,
            name: code.name().into(),
            message,
        })?;
    }
    Ok(())
}

async fn run_async(args: ClientArgs) -> ExitCode {
    let port = args.port.unwrap_or(if args.secure { 9440 } else { 9001 });
    let endpoints: Vec<String> = args
        .host
        .iter()
        .map(|h| {
            if h.contains(':') {
                h.clone()
            } else {
                format!("{h}:{port}")
            }
        })
        .collect();
    let timeout = std::time::Duration::from_secs(args.connect_timeout.max(1));
    let connected = if args.secure {
        let tls = match &args.tls_ca_file {
            Some(path) => match qh_client::Tls::with_ca_file(path) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!("cannot read {}: {e}", path.display());
                    print_error(ErrorCode::BAD_ARGUMENTS, &msg);
                    return ExitCode::from(exit_status(ErrorCode::BAD_ARGUMENTS));
                }
            },
            None => qh_client::Tls::default(),
        };
        Client::connect_tls(&endpoints, timeout, &tls).await
    } else {
        Client::connect_with_timeout(&endpoints, timeout).await
    };
    let mut client = match connected {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let password = if args.ask_password {
        match rpassword::prompt_password("Password: ") {
            Ok(p) => Some(p),
            Err(e) => {
                print_error(
                    ErrorCode::BAD_ARGUMENTS,
                    &format!("cannot read the password: {e}"),
                );
                return ExitCode::from(exit_status(ErrorCode::BAD_ARGUMENTS));
            }
        }
    } else {
        args.password.clone()
    };
    if args.user.is_some() || password.is_some() {
        client = client.with_credentials(
            args.user.as_deref().unwrap_or("default"),
            password.as_deref().unwrap_or(""),
        );
    }
    match args.common.parsed_settings() {
        Ok(list) => {
            for (k, v) in list {
                client.set_setting(&k, &v);
            }
        }
        Err(code) => return code,
    }
    let script = if let Some(q) = &args.query {
        Some(q.clone())
    } else if let Some(f) = &args.queries_file {
        match std::fs::read_to_string(f) {
            Ok(s) => Some(s),
            Err(e) => {
                print_error(
                    ErrorCode::FILE_DOESNT_EXIST,
                    &format!("cannot read {}: {e}", f.display()),
                );
                return ExitCode::from(exit_status(ErrorCode::FILE_DOESNT_EXIST));
            }
        }
    } else if !std::io::stdin().is_terminal() {
        let mut s = String::new();
        if std::io::stdin().read_to_string(&mut s).is_err() {
            return ExitCode::from(1);
        }
        Some(s)
    } else {
        None
    };
    match script {
        Some(sql) => {
            let mut stdin_free = args.query.is_some() && !std::io::stdin().is_terminal();
            for stmt in qh_sql_lex::split_statements(&sql) {
                let stmt = crate::output::vertical_suffix(&stmt);
                if let Err(e) = run_one(&mut client, &stmt, &args, &mut stdin_free).await {
                    return fail(&e);
                }
            }
            ExitCode::SUCCESS
        }
        None => interactive(&mut client, &args).await,
    }
}

/// The interactive prompt: line editing, history, multi-line statements.
/// Ctrl-C while a statement runs cancels it (the server stops it when the
/// call is dropped) and returns to the prompt.
async fn interactive(client: &mut Client, args: &ClientArgs) -> ExitCode {
    let mut prompt = match Prompt::open() {
        Ok(p) => p,
        Err(code) => return code,
    };
    println!("quorumhouse client connected to {}", client.endpoint());
    loop {
        let text = match prompt.read_statements() {
            Line::Quit => {
                println!("Bye.");
                return ExitCode::SUCCESS;
            }
            Line::Statements(t) => t,
        };
        let mut never = false;
        for stmt in qh_sql_lex::split_statements(&text) {
            let stmt = crate::output::vertical_suffix(&stmt);
            let started = Instant::now();
            let outcome = tokio::select! {
                r = run_one(client, &stmt, args, &mut never) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            };
            match outcome {
                Some(Ok(())) => println!(
                    "\nOk. Elapsed: {:.3} sec.\n",
                    started.elapsed().as_secs_f64()
                ),
                Some(Err(e)) => {
                    let _ = fail(&e);
                }
                None => {
                    println!("\nQuery was cancelled.\n");
                    break;
                }
            }
        }
    }
}
