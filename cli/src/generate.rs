//! `telemetry completions SHELL` and `telemetry man`: generated from the same clap
//! definitions that parse the arguments, so they can never disagree with them.

use std::process::ExitCode;

use super::{CmdResult, Context, build_command};

pub(super) fn completions(ctx: &mut Context<'_>, shell: clap_complete::Shell) -> CmdResult {
    let mut command = build_command(&ctx.name, ctx.config, ctx.options);
    // Completion scripts are keyed by the executable's name, which has no spaces:
    // `mytool telemetry` completes as part of `mytool`.
    let bin = ctx.name.split(' ').next().unwrap_or("telemetry").to_owned();
    clap_complete::generate(shell, &mut command, bin, ctx.out);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn man(ctx: &mut Context<'_>) -> CmdResult {
    let command = build_command(&ctx.name, ctx.config, ctx.options);
    // roff has no spaces in a page's name.
    let command = command.name(ctx.name.replace(' ', "-"));
    clap_mangen::Man::new(command).render(ctx.out)?;
    Ok(ExitCode::SUCCESS)
}
