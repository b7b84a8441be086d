//! Progress bars (indicatif) on stderr. They draw only on a terminal, so scripts and
//! tests see clean output.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` units (`unit` names them: "blocks", "heights").
pub fn bar(len: u64, prefix: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = format!(
        "{{prefix:>12.bold}} [{{bar:36.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} \
         {{per_sec:.dim}} eta {{eta}} {{msg:.dim}}"
    );
    pb.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A spinner for work of unknown length.
#[cfg_attr(not(feature = "tiers"), allow(dead_code))]
pub fn spinner(prefix: &str, msg: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12.bold} {spinner} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(prefix.to_owned());
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
