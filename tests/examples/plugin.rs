//! A plugin with telemetry: a `cdylib` that a host program (`plugin_host`) loads with
//! `dlopen` or `LoadLibrary`, as a Python extension or an editor plugin is loaded.
//!
//! `plugin_start` calls `telemetry::start` asking for crash reporting and uploads,
//! counts `plugin/calls`, and returns 1 if a telemetry child was started (it never
//! must be: the executable is the host's), else 0. Its telemetry directory comes from
//! `PLUGIN_TELEMETRY_DIR`; its decision log goes to the file `PLUGIN_LOG`.

use telemetry::counter::Counter;

static CALLS: Counter = Counter::new("plugin/calls");

/// Starts telemetry in the plugin and counts one call.
#[unsafe(no_mangle)]
pub extern "C" fn plugin_start() -> i32 {
    // A library is named by its package under `program!()` (Cargo gives a library no
    // binary name): say which program this is.
    let program = telemetry::counter::Program::new("plugin", env!("CARGO_PKG_VERSION"));
    let mut config = telemetry::Config::new(program)
        .report_crashes(true)
        .upload(true)
        .upload_url("http://127.0.0.1:9/upload")
        .config_url("http://127.0.0.1:9/config.json");
    if let Some(dir) = std::env::var_os("PLUGIN_TELEMETRY_DIR") {
        config = config.dir(dir);
    }
    if let Some(log) =
        std::env::var_os("PLUGIN_LOG").and_then(|path| std::fs::File::create(path).ok())
    {
        config = config.logger(log);
    }
    let started = telemetry::start(config);
    CALLS.inc();
    i32::from(started.started_child())
}
