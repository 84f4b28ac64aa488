//! Command-line clients that are not `cks-sim`'s own subcommands.
//!
//! - [`cloudhsm`]: a CloudHSM CLI-compatible command line (`cks-sim cloudhsm-cli …`, or the
//!   binary invoked as `cloudhsm-cli`) over the simulated cluster, a client of the `/_sim`
//!   control door.

pub mod cloudhsm;
