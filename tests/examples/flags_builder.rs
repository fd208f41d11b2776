//! A tool that builds its command line with clap's builder API and counts what a
//! person gave on it with `telemetry::count_flags`. The `flags` end-to-end tests run
//! it and read its counter file.

use clap::{Arg, ArgAction, ArgGroup, Command};

fn cli() -> Command {
    Command::new("flags_builder")
        .arg(
            Arg::new("dir")
                .long("dir")
                .env("FLAGS_TOOL_DIR")
                .required(true),
        )
        .arg(Arg::new("color").long("color").default_value("auto"))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue))
        .arg(Arg::new("csv").long("csv").action(ArgAction::SetTrue))
        // A group, as the derive API makes for every struct: never a counter.
        .group(ArgGroup::new("format").args(["json", "csv"]))
        .subcommand(
            Command::new("search")
                .arg(Arg::new("pattern").required(true))
                .arg(Arg::new("limit").short('n').long("limit")),
        )
        // A name the person types, not one the program declared: never counted.
        .allow_external_subcommands(true)
}

fn main() {
    let matches = cli().get_matches();
    let dir = matches
        .get_one::<String>("dir")
        .cloned()
        .unwrap_or_default();
    let config = telemetry::Config::new(telemetry::program!())
        .dir(dir)
        .report_crashes(false);
    let _ = telemetry::start(config);
    telemetry::count_flags("flags_builder/flag:", &matches);
}
