//! The CLI's failures and their exit codes. Scripts branch on the code, so every failure maps
//! to one `sysexits.h` value (as rabbitmqadmin v2 does) instead of a bare 1.

use sysexits::ExitCode as Sysexit;

/// A failed CLI verb: what to print and which exit code to return.
#[derive(Debug)]
pub struct CliError {
    /// The `sysexits.h` code.
    pub code: Sysexit,
    /// One line for people, printed after `wrenmq: `.
    pub message: String,
    /// The admin API's HTTP status, when the failure is its answer (a check tells a missing
    /// queue, 404, from a broker it cannot ask).
    pub status: Option<u16>,
}

impl CliError {
    /// A failure with an explicit code.
    pub fn new(code: Sysexit, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// Bad flags or values that clap cannot check (64).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Sysexit::Usage, message)
    }

    /// The broker refused the request's data, or named something that does not exist (65).
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(Sysexit::DataErr, message)
    }

    /// An input file is missing or unreadable (66).
    pub fn no_input(message: impl Into<String>) -> Self {
        Self::new(Sysexit::NoInput, message)
    }

    /// The broker cannot be reached or says it is unavailable (69).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Sysexit::Unavailable, message)
    }

    /// The broker answered with something this CLI does not understand (76).
    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(Sysexit::Protocol, message)
    }

    /// Authentication failed or the role is not enough (77).
    pub fn no_perm(message: impl Into<String>) -> Self {
        Self::new(Sysexit::NoPerm, message)
    }

    /// The contexts file is missing, malformed or lacks the named context (78).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Sysexit::Config, message)
    }

    /// A local write (an `--out` directory, stdout) failed (74).
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(Sysexit::IoErr, message)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> std::process::ExitCode {
        std::process::ExitCode::from(self.code as u8)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of a CLI verb.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_sysexits_values() {
        assert_eq!(CliError::usage("x").code as u8, 64);
        assert_eq!(CliError::data("x").code as u8, 65);
        assert_eq!(CliError::no_input("x").code as u8, 66);
        assert_eq!(CliError::unavailable("x").code as u8, 69);
        assert_eq!(CliError::io("x").code as u8, 74);
        assert_eq!(CliError::protocol("x").code as u8, 76);
        assert_eq!(CliError::no_perm("x").code as u8, 77);
        assert_eq!(CliError::config("x").code as u8, 78);
    }
}
