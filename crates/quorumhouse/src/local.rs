//! `quorumhouse local`: the engine embedded in the process, no network.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use qh_query::{Engine, EngineOptions, Input, Session};
use qh_types::ErrorCode;

use crate::output::{choose_format, exit_status, print_error, print_result};

#[derive(Args, Debug)]
pub struct LocalArgs {
    /// Data directory; a temporary one (removed at exit) when omitted.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// SQL to run; several statements separated by `;`. Read from stdin when
    /// omitted.
    #[arg(long, short = 'q')]
    pub query: Option<String>,
    #[command(flatten)]
    pub common: crate::output::CommonArgs,
}

pub fn run(args: LocalArgs) -> ExitCode {
    let rt = match crate::output::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(run_async(args))
}

async fn run_async(args: LocalArgs) -> ExitCode {
    let _tmp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => match tempfile::tempdir() {
            Ok(t) => {
                let p = t.path().to_path_buf();
                _tmp = t;
                p
            }
            Err(e) => {
                print_error(
                    ErrorCode::CANNOT_OPEN_FILE,
                    &format!("cannot create a temporary directory: {e}"),
                );
                return ExitCode::from(1);
            }
        },
    };
    let engine = match Engine::open(&data_dir, EngineOptions::default()) {
        Ok(e) => e,
        Err(e) => {
            print_error(e.code(), &e.to_string());
            return ExitCode::from(exit_status(e.code()));
        }
    };
    let mut session = engine.session();
    match args.common.parsed_settings() {
        Ok(list) => {
            for (k, v) in list {
                session.settings_mut().set(&k, v);
            }
        }
        Err(code) => return code,
    }
    let (sql, mut input): (String, Input) = match args.query.clone() {
        Some(q) => {
            let stdin = std::io::stdin();
            let input: Input = if stdin.is_terminal() {
                None
            } else {
                Some(Box::new(stdin))
            };
            (q, input)
        }
        None if std::io::stdin().is_terminal() => {
            let status = interactive(&mut session, &args).await;
            engine.shutdown();
            return status;
        }
        None => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                print_error(
                    ErrorCode::CANNOT_READ_ALL_DATA,
                    &format!("cannot read the query from stdin: {e}"),
                );
                return ExitCode::from(1);
            }
            (s, None)
        }
    };
    let mut status = ExitCode::SUCCESS;
    for stmt in qh_query::split_statements(&sql) {
        if let Err(code) = run_statement(&mut session, &stmt, &mut input, &args).await {
            status = code;
            break;
        }
    }
    engine.shutdown();
    status
}

/// Runs one statement and prints its result; a failure is printed and
/// becomes the exit status. A closed stdout (`| head`) ends quietly.
async fn run_statement(
    session: &mut Session,
    stmt: &str,
    input: &mut Input,
    args: &LocalArgs,
) -> Result<(), ExitCode> {
    let stmt = crate::output::vertical_suffix(stmt);
    let res = match session.execute(&stmt, input).await {
        Ok(res) => res,
        Err(e) => {
            print_error(e.code(), &e.to_string());
            return Err(ExitCode::from(exit_status(e.code())));
        }
    };
    if args.common.time {
        eprintln!("{:.3}", res.summary.elapsed.as_secs_f64());
    }
    if args.common.stats {
        let s = &res.summary;
        crate::output::print_stats(
            s.read_rows,
            s.read_bytes,
            (s.granules_read, s.granules_total),
            s.written_rows,
            s.elapsed.as_secs_f64(),
        );
    }
    if !res.has_result_set() {
        return Ok(());
    }
    let fmt = choose_format(res.format.as_deref(), args.common.format.as_deref());
    let printed = print_result(
        &fmt,
        res.format_options,
        res.schema.clone(),
        &res.batches,
        res.totals.as_ref(),
    );
    printed.map_err(|(code, message)| {
        print_error(code, &message);
        ExitCode::from(exit_status(code))
    })
}

/// clickhouse-local's prompt: errors are printed and the prompt goes on.
async fn interactive(session: &mut Session, args: &LocalArgs) -> ExitCode {
    let mut prompt = match crate::repl::Prompt::open() {
        Ok(p) => p,
        Err(code) => return code,
    };
    loop {
        let text = match prompt.read_statements() {
            crate::repl::Line::Quit => {
                println!("Bye.");
                return ExitCode::SUCCESS;
            }
            crate::repl::Line::Statements(t) => t,
        };
        for stmt in qh_query::split_statements(&text) {
            let started = std::time::Instant::now();
            if run_statement(session, &stmt, &mut None, args)
                .await
                .is_err()
            {
                break;
            }
            println!(
                "\nOk. Elapsed: {:.3} sec.\n",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
