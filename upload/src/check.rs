//! The receiving side of approval: whether a report that arrived at a collector holds
//! only what an upload config approves. The collector (`telemetry-server`) calls this,
//! so the rule that decides what may be sent and the rule that decides what is stored
//! are one implementation, reading the same lookup tables.

use std::fmt;

use crate::config::{Origin, UploadConfig};
use crate::report::ProgramReport;

/// The first thing in a program report that the config does not approve.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unapproved {
    /// The program, its version, or its toolchain, OS or arch is not in the config.
    Build {
        /// `program@version toolchain os/arch`, as received.
        build: String,
    },
    /// A counter that is not approved for this program.
    Counter {
        /// The counter's name, as received.
        name: String,
    },
    /// A stack counter whose prefix is not approved for this program.
    Stack {
        /// The stack counter's prefix (the name before the first frame), as received.
        prefix: String,
    },
}

impl fmt::Display for Unapproved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names come from untrusted clients: `{:?}` keeps a newline or a control
        // character from breaking the one-line message.
        match self {
            Unapproved::Build { build } => write!(f, "build {build:?} is not approved"),
            Unapproved::Counter { name } => write!(f, "counter {name:?} is not approved"),
            Unapproved::Stack { prefix } => write!(f, "stack counter {prefix:?} is not approved"),
        }
    }
}

impl UploadConfig {
    /// Checks that the config approves the program report's program, version,
    /// toolchain, OS and arch, every counter and every stack counter's prefix: what
    /// the uploader copies into a report is exactly what passes this check. Sampling
    /// rates are not checked: they decide how many reports carry a counter, not
    /// whether it may be sent, and a config's rates may change between a client's
    /// download of it and its upload.
    pub fn check_program(&self, program: &ProgramReport) -> Result<(), Unapproved> {
        let origin = Origin {
            program: &program.program,
            version: &program.version,
            toolchain: &program.toolchain,
            os: &program.os,
            arch: &program.arch,
        };
        let Some(approved) = self.approved(origin) else {
            return Err(Unapproved::Build {
                build: format!(
                    "{}@{} {} {}/{}",
                    program.program, program.version, program.toolchain, program.os, program.arch
                ),
            });
        };
        if let Some(name) = program
            .counters
            .keys()
            .find(|name| name.contains('\n') || approved.rate(name).is_none())
        {
            return Err(Unapproved::Counter { name: name.clone() });
        }
        if let Some(name) = program
            .stacks
            .keys()
            .find(|name| !name.contains('\n') || approved.rate(name).is_none())
        {
            let prefix = name.split_once('\n').map_or(name.as_str(), |(p, _)| p);
            return Err(Unapproved::Stack {
                prefix: prefix.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "OS": ["linux"], "Arch": ["x86_64"], "Toolchain": ["1.95.0"], "SampleRate": 1,
        "Programs": [{"Name": "tool", "Versions": ["1.0.0"],
            "Counters": [{"Name": "tool/flag:{a,b}", "Rate": 1}, {"Name": "tool/rare", "Rate": 0.01}],
            "Stacks": [{"Name": "tool/bug", "Rate": 1, "Depth": 16}]}]
    }"#;

    fn program(counters: &[&str], stacks: &[&str]) -> ProgramReport {
        ProgramReport {
            program: "tool".into(),
            version: "1.0.0".into(),
            toolchain: "1.95.0".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            counters: counters.iter().map(|c| ((*c).to_owned(), 1)).collect(),
            stacks: stacks.iter().map(|c| ((*c).to_owned(), 1)).collect(),
        }
    }

    #[test]
    fn approved_programs_pass_whatever_their_rates() {
        let config = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        let p = program(&["tool/flag:a", "tool/rare"], &["tool/bug\nmain.rs:1"]);
        assert_eq!(config.check_program(&p), Ok(()));
        assert_eq!(config.check_program(&program(&[], &[])), Ok(()));
    }

    #[test]
    fn names_the_first_unapproved_thing() {
        let config = UploadConfig::parse(CONFIG.as_bytes()).unwrap();
        let err = config
            .check_program(&program(&["tool/flag:a", "tool/flag:c"], &[]))
            .unwrap_err();
        assert_eq!(err.to_string(), "counter \"tool/flag:c\" is not approved");
        let err = config
            .check_program(&program(&[], &["tool/other\nmain.rs:1\nsecret"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "stack counter \"tool/other\" is not approved"
        );
        // A stack prefix is not a counter, and a counter is not a stack.
        assert!(config.check_program(&program(&["tool/bug"], &[])).is_err());
        assert!(
            config
                .check_program(&program(&["tool/bug\nmain.rs:1"], &[]))
                .is_err()
        );
        assert!(
            config
                .check_program(&program(&[], &["tool/flag:a"]))
                .is_err()
        );
        let mut other = program(&["tool/flag:a"], &[]);
        other.os = "windows".into();
        assert_eq!(
            config.check_program(&other).unwrap_err().to_string(),
            "build \"tool@1.0.0 1.95.0 windows/x86_64\" is not approved"
        );
    }

    #[test]
    fn reads_reports_from_go_uploaders() {
        let go = br#"{"Week": "2026-11-20", "LastWeek": "", "X": 0.5, "Config": "v0.0.1",
            "Programs": [{"Program": "cmd/go", "Version": "go1.23.0", "GoVersion": "go1.23.0",
                "GOOS": "linux", "GOARCH": "amd64", "Counters": {"go/invocations": 3}, "Stacks": {}}]}"#;
        let report = crate::Report::parse(go).unwrap();
        let config = UploadConfig::parse(
            br#"{"GOOS": ["linux"], "GOARCH": ["amd64"], "GoVersion": ["go1.23.0"],
            "SampleRate": 1, "Programs": [{"Name": "cmd/go", "Versions": ["go1.23.0"],
            "Counters": [{"Name": "go/invocations", "Rate": 1}]}]}"#,
        )
        .unwrap();
        let p = &report.programs[0];
        assert_eq!(
            (p.toolchain.as_str(), p.os.as_str(), p.arch.as_str()),
            ("go1.23.0", "linux", "amd64")
        );
        assert_eq!(config.check_program(p), Ok(()));
    }
}
