//! The interactive questionnaire of `license-demo stress` (no arguments, on a terminal).

use super::{Mode, Profile, StressConfig, StressError};
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};
use std::time::Duration;

fn prompt_error(e: dialoguer::Error) -> StressError {
    StressError::Config(format!("prompt failed: {e}"))
}

/// Asks for target, profile, mode and tool, and returns the run configuration, or `None` when
/// the user declines at the final confirmation.
///
/// `list_tools` fetches the tool names served at a target (for the tool menu).
pub fn ask(
    default_target: &str,
    list_tools: impl Fn(&str) -> Result<Vec<String>, StressError>,
) -> Result<Option<StressConfig>, StressError> {
    let theme = ColorfulTheme::default();
    let target: String = Input::with_theme(&theme)
        .with_prompt("Target server URL")
        .default(default_target.to_string())
        .interact_text()
        .map_err(prompt_error)?;
    let tools = list_tools(&target)?;

    let labels: Vec<String> = Profile::ALL
        .iter()
        .map(|p| match p.shape() {
            Some((w, o, r)) => format!(
                "{:<8} {w} workers x {o} ops, ramp-up {} s",
                p.name(),
                r.as_secs()
            ),
            None => format!("{:<8} choose workers, ops and ramp-up", p.name()),
        })
        .collect();
    let choice = Select::with_theme(&theme)
        .with_prompt("Load profile")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(prompt_error)?;
    let profile = Profile::ALL[choice];
    let mut config = StressConfig::from_profile(target, profile);
    if profile == Profile::Custom {
        config.workers = Input::with_theme(&theme)
            .with_prompt("Workers")
            .default(10usize)
            .validate_with(|n: &usize| if *n >= 1 { Ok(()) } else { Err("at least 1") })
            .interact_text()
            .map_err(prompt_error)?;
        config.ops_per_worker = Input::with_theme(&theme)
            .with_prompt("Operations per worker")
            .default(50usize)
            .validate_with(|n: &usize| if *n >= 1 { Ok(()) } else { Err("at least 1") })
            .interact_text()
            .map_err(prompt_error)?;
        let ramp: u64 = Input::with_theme(&theme)
            .with_prompt("Ramp-up seconds")
            .default(0u64)
            .interact_text()
            .map_err(prompt_error)?;
        config.ramp_up = Duration::from_secs(ramp);
    }

    let modes = [
        "full-cycle     borrow, hold, return",
        "checkout-only  borrow and keep (fills the pool)",
    ];
    let mode = Select::with_theme(&theme)
        .with_prompt("Mode")
        .items(modes)
        .default(0)
        .interact()
        .map_err(prompt_error)?;
    config.mode = if mode == 0 {
        Mode::FullCycle
    } else {
        Mode::CheckoutOnly
    };

    let mut tool_items = vec!["(random tool per operation)".to_string()];
    tool_items.extend(tools.iter().cloned());
    let tool = Select::with_theme(&theme)
        .with_prompt("Tool")
        .items(&tool_items)
        .default(0)
        .interact()
        .map_err(prompt_error)?;
    config.tool = (tool > 0).then(|| tools[tool - 1].clone());

    let go = Confirm::with_theme(&theme)
        .with_prompt(format!(
            "Run {} operations ({} workers x {}) against {}?",
            config.total_ops(),
            config.workers,
            config.ops_per_worker,
            config.target
        ))
        .default(true)
        .interact()
        .map_err(prompt_error)?;
    Ok(go.then_some(config))
}
