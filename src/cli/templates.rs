//! The pipeline templates `sloth-runner new` writes (`templates/*.lua`, compiled in) and
//! `sloth-runner template list`.

use std::process::ExitCode;

use clap::Subcommand;

/// The text templates write in place of the group's name (the Go sloth-runner's spelling).
const GROUP_PLACEHOLDER: &str = "{{.GroupName}}";

/// Every template: its name and its text, whose first line is a `-- ` description.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("basic", include_str!("../../templates/basic.lua")),
    ("remote", include_str!("../../templates/remote.lua")),
    ("parallel", include_str!("../../templates/parallel.lua")),
    ("values", include_str!("../../templates/values.lua")),
];

/// The template `new` uses without `-t`.
pub const DEFAULT: &str = "basic";

/// Names the Go sloth-runner used for a template here: `simple` was its default.
const ALIASES: &[(&str, &str)] = &[("simple", "basic"), ("pipeline", "parallel")];

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the templates `sloth-runner new -t NAME` can write.
    List,
}

pub fn execute(command: &TemplateCommand) -> ExitCode {
    match command {
        TemplateCommand::List => {
            let width = TEMPLATES.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            for (name, text) in TEMPLATES {
                println!("{name:width$}  {}", description(text));
            }
            ExitCode::SUCCESS
        }
    }
}

/// A template's one-line description: its first line, without the comment mark.
fn description(text: &str) -> &str {
    let first = text.lines().next().unwrap_or("");
    first.strip_prefix("--").unwrap_or(first).trim()
}

/// The text of template `name` (or an alias) for group `group`; the error lists the names.
pub fn render(name: &str, group: &str) -> Result<String, String> {
    let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, real)| real);
    let (_, text) = TEMPLATES.iter().find(|(known, _)| *known == name).ok_or_else(|| {
        let names: Vec<&str> = TEMPLATES.iter().map(|(known, _)| *known).collect();
        format!("unknown template '{name}' (templates: {}; see sloth-runner template list)", names.join(", "))
    })?;
    Ok(text.replace(GROUP_PLACEHOLDER, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_its_group_and_describes_itself() {
        for (name, text) in TEMPLATES {
            assert!(text.contains(GROUP_PLACEHOLDER), "{name} does not name the group");
            assert!(text.starts_with("-- ") && !description(text).is_empty(), "{name} has no description line");
        }
        assert!(render("simple", "g").is_ok_and(|text| text.contains("[\"g\"]")));
        assert!(render("nope", "g").is_err_and(|error| error.contains("basic, remote")));
    }
}
