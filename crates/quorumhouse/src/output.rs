//! Printing result sets and errors the way clickhouse-client does.

use std::io::{IsTerminal, Write};

use qh_types::arrow::array::RecordBatch;
use qh_types::arrow::datatypes::SchemaRef;
use qh_types::encode::ResultEncoder;
use qh_types::formats::FormatOptions;
use qh_types::ErrorCode;

/// The format to print with: the statement's FORMAT, else `--format`, else
/// Pretty on a terminal and TSV when piped. Checked when the encoder is made.
pub fn choose_format(stmt_format: Option<&str>, flag: Option<&str>) -> String {
    match stmt_format.or(flag) {
        Some(n) => n.to_string(),
        None if std::io::stdout().is_terminal() => "PrettyCompact".to_string(),
        None => "TabSeparated".to_string(),
    }
}

/// clickhouse-client's `\G` terminator: `SELECT ... \G` prints vertically.
pub fn vertical_suffix(stmt: &str) -> String {
    match stmt.trim_end().strip_suffix("\\G") {
        Some(rest) => format!("{} FORMAT Vertical", rest.trim_end()),
        None => stmt.to_string(),
    }
}

/// Writes a whole result set to stdout in the format `name`, the binary
/// ones (Native, RowBinary, Arrow, Parquet) included. A reader that went
/// away (`| head`) is not an error.
pub fn print_result(
    name: &str,
    opts: FormatOptions,
    schema: SchemaRef,
    batches: &[RecordBatch],
    totals: Option<&RecordBatch>,
) -> Result<(), (ErrorCode, String)> {
    let mut enc =
        ResultEncoder::new(Some(name), &schema, opts).map_err(|e| (e.code(), e.to_string()))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut write = |bytes: Vec<u8>| match out.write_all(&bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err((
            ErrorCode::CANNOT_WRITE_TO_FILE_DESCRIPTOR,
            format!("cannot write the result: {e}"),
        )),
        _ => Ok(()),
    };
    for b in batches {
        write(enc.write_batch(b).map_err(|e| (e.code(), e.to_string()))?)?;
    }
    if let Some(t) = totals {
        write(enc.write_totals(t))?;
    }
    write(enc.finish().map_err(|e| (e.code(), e.to_string()))?)?;
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err((
            ErrorCode::CANNOT_WRITE_TO_FILE_DESCRIPTOR,
            format!("cannot write the result: {e}"),
        )),
        _ => Ok(()),
    }
}

/// `Code: 60. Table default.x does not exist. (UNKNOWN_TABLE)` on stderr.
pub fn print_error(code: ErrorCode, message: &str) {
    eprintln!("{}", qh_types::error_codes::render(code, message));
}

/// The process exit status for an error code (never 0).
pub fn exit_status(code: ErrorCode) -> u8 {
    match (code as i32) % 256 {
        0 => 1,
        n => n as u8,
    }
}

const QUERY_THREAD_STACK: usize = 64 << 20;

/// The tokio runtime of a command; a failure is printed and becomes the exit
/// status.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    // Worker and blocking threads run query plans whose evaluation recurses
    // once per operator of an expression (DataFusion rebuilds a long WHERE
    // conjunction as a left-deep tree); 2 MiB is too little for the
    // 50,000-element statements ClickHouse's limits admit. Untouched stack
    // pages cost nothing.
    b.thread_stack_size(QUERY_THREAD_STACK);
    b.enable_all().build().map_err(|e| {
        print_error(
            ErrorCode::LOGICAL_ERROR,
            &format!("cannot start the runtime: {e}"),
        );
        std::process::ExitCode::from(1)
    })
}

/// The `--stats` line: rows and granules read, rows written, time.
pub fn print_stats(
    read_rows: u64,
    read_bytes: u64,
    granules: (u64, u64),
    written_rows: u64,
    secs: f64,
) {
    eprintln!(
        "Read {read_rows} rows, {read_bytes} bytes; granules {}/{}; written {written_rows} rows; {secs:.3} s",
        granules.0, granules.1
    );
}

/// Flags `local` and `client` share (like clickhouse-local/-client).
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Output format (TSV, TSVWithNames, CSV, CSVWithNames, JSONEachRow, Pretty).
    #[arg(long, short = 'f')]
    pub format: Option<String>,
    /// Print the elapsed time of each statement to stderr.
    #[arg(long, short = 't')]
    pub time: bool,
    /// Print rows, bytes and granules read by each statement to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Accepted for clickhouse-local/-client compatibility: several statements always work.
    #[arg(long, short = 'n')]
    pub multiquery: bool,
    /// Settings for every statement, as name=value.
    #[arg(long = "setting", value_name = "NAME=VALUE")]
    pub settings: Vec<String>,
}

impl CommonArgs {
    /// `--setting name=value` pairs; a malformed one is printed and becomes
    /// the exit status.
    pub fn parsed_settings(&self) -> Result<Vec<(String, String)>, std::process::ExitCode> {
        self.settings
            .iter()
            .map(|s| match s.split_once('=') {
                Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                None => {
                    print_error(
                        ErrorCode::BAD_ARGUMENTS,
                        &format!("setting '{s}' is not name=value"),
                    );
                    Err(std::process::ExitCode::from(exit_status(
                        ErrorCode::BAD_ARGUMENTS,
                    )))
                }
            })
            .collect()
    }
}
