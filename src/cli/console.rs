//! The console: tracing events rendered for people, on stderr.
//!
//! `log` lines of a task read `<group>/<task>  INFO  message key=value`; live command output
//! reads `<group>/<task> | line` (stdout) or `<group>/<task> ! line` (stderr). Each event is
//! written with one write, so lines of concurrent tasks never interleave mid-line.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::modules::console_events::{LOG_TARGET, OUTPUT_TARGET};

/// How chatty the console is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: `<group>/<task>  INFO  message key=value`.
    Text,
    /// One JSON object a line — `timestamp`, `level`, `target`, and `fields` (with `message`) —
    /// for a log collector.
    Json,
}

/// Installs the console subscriber. `RUST_LOG`, when set, overrides the verbosity flags.
pub fn init(verbosity: Verbosity, format: LogFormat) {
    let default = match verbosity {
        Verbosity::Quiet => "warn",
        Verbosity::Normal => "info",
        // sloth-runner's own detail and the tasks' debug lines; the libraries under it (HTTP/2
        // frames, connection pools, glob compilation) only through RUST_LOG.
        Verbosity::Verbose => "info,sloth_runner=debug,lua=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let console = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(crate::status_line::StderrLines::default)
            .event_format(ConsoleFormat)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(crate::status_line::StderrLines::default)
            .boxed(),
    };
    // Every task's log and output lines, whatever the console shows (only once the stream is
    // on: `run --output json`).
    let stream = JsonLines.with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_targets([(LOG_TARGET, Level::INFO), (OUTPUT_TARGET, Level::INFO)]),
    );
    let _ = tracing_subscriber::registry().with(console.with_filter(filter)).with(stream).try_init();
}

/// Log and output lines as `log` and `output` events of the JSON stream.
struct JsonLines;

impl<S: Subscriber> tracing_subscriber::Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !crate::json_events::enabled() {
            return;
        }
        let mut fields = ConsoleFields::default();
        event.record(&mut fields);
        let mut object = serde_json::Map::new();
        match (fields.of, fields.task) {
            (Some(of), Some(task)) if of != task => {
                object.insert("task".to_owned(), of.into());
                object.insert("from".to_owned(), task.into());
            }
            (Some(task), _) | (None, Some(task)) => {
                object.insert("task".to_owned(), task.into());
            }
            (None, None) => {}
        }
        if event.metadata().target() == OUTPUT_TARGET {
            object.insert("stream".to_owned(), fields.stream.unwrap_or_else(|| "stdout".to_owned()).into());
            object.insert("line".to_owned(), fields.message.into());
            crate::json_events::emit("output", object);
        } else {
            object.insert("level".to_owned(), level_name(*event.metadata().level()).to_ascii_lowercase().into());
            object.insert("message".to_owned(), fields.message.into());
            if !fields.rest.is_empty() {
                object.insert("fields".to_owned(), fields.rest.join(" ").into());
            }
            crate::json_events::emit("log", object);
        }
    }
}

struct ConsoleFormat;

impl<S, N> FormatEvent<S, N> for ConsoleFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = ConsoleFields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let mut line = String::new();
        if event.metadata().target() == OUTPUT_TARGET {
            let marker = if fields.stream.as_deref() == Some("stderr") { '!' } else { '|' };
            match &fields.task {
                Some(task) => write!(line, "{task} {marker} {}", fields.message)?,
                None => line.push_str(&fields.message),
            }
        } else {
            if let Some(task) = &fields.task {
                write!(line, "{task}  ")?;
            }
            write!(line, "{}  {}", level_name(level), fields.message)?;
            if !fields.rest.is_empty() {
                write!(line, " {}", fields.rest.join(" "))?;
            }
        }
        writeln!(writer, "{line}")
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

#[derive(Default)]
struct ConsoleFields {
    message: String,
    task: Option<String>,
    /// The task the line is of, when `task` (the prefix shown) says where it ran instead.
    of: Option<String>,
    stream: Option<String>,
    rest: Vec<String>,
}

impl Visit for ConsoleFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "task" => self.task = Some(value.to_owned()),
            "of" => self.of = Some(value.to_owned()),
            "stream" => self.stream = Some(value.to_owned()),
            // The `log` module pre-renders its fields as `k=v k=v`.
            "fields" => self.rest.push(value.to_owned()),
            name => self.rest.push(format!("{name}={value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            _ => self.record_str(field, &format!("{value:?}")),
        }
    }
}
