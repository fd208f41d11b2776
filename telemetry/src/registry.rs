//! Keeps a tool whose directory is elsewhere (`Config::dir`) findable from the
//! telemetry root: `start` records it in the root's registry (`<root>/directories`),
//! which `telemetry env` and `telemetry --tool NAME` read. Only when the mode is not
//! off, and cheaply: tools in the default place skip it, only the run that creates the
//! day's counter file looks (the other runs of the day neither read nor write the
//! registry), and a tool already listed costs that run one bounded read and no write.

use telemetry_internal::{Ambient, Dir, Program};

use crate::Config;
use crate::log::Log;

/// The program to list under, for a tool whose directory is its own (`Config::dir`);
/// `None` for a tool in the default place, which needs no listing.
pub(crate) fn listed_as(config: &Config) -> Option<&Program> {
    config.get_dir().map(|_| config.get_program())
}

/// Lists `dir` under `program`'s name in the root's registry if it is not there yet.
/// Failures are logged and change nothing else.
pub(crate) fn keep_findable(program: &Program, dir: &Dir, ambient: &Ambient, log: &Log) {
    let Some(root) = ambient.root() else {
        return;
    };
    match root.register(program.name(), dir) {
        Ok(true) => log.line(format_args!(
            "listed the directory in {}, so that `telemetry env` finds it",
            root.registry_file().display()
        )),
        Ok(false) => {}
        Err(err) => log.line(format_args!(
            "cannot list the directory in {}: {err}",
            root.registry_file().display()
        )),
    }
}
