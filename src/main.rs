//! sloth-runner: parse the command line, run it, exit with its code.

fn main() -> std::process::ExitCode {
    sloth_runner::cli::main()
}
