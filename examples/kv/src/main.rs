//! `rafthttp-kv`: one node of the replicated key-value service. See [`rafthttp_kv::cli`] for the
//! command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    rafthttp_kv::cli::main_with_args(std::env::args().skip(1))
}
