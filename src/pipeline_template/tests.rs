use std::path::Path;

use super::{TemplateData, first_template_line, render};

fn data() -> TemplateData {
    TemplateData { env: "Production".to_owned(), is_production: true, shards: vec![1, 2, 3] }
}

fn rendered(text: &str) -> String {
    let out = render(Path::new("p.lua"), text, &data()).expect("renders");
    assert_eq!(out.matches('\n').count(), text.matches('\n').count(), "the line count changed:\n{out}");
    out
}

fn refused(text: &str) -> String {
    render(Path::new("p.lua"), text, &data()).expect_err("refused").to_string()
}

#[test]
fn values_print_as_go_prints_them() {
    assert_eq!(
        rendered("{{ .Env }} {{.IsProduction}} {{ .Shards }} {{ $.Env }}"),
        "Production true [1 2 3] Production"
    );
    assert_eq!(rendered("{{ . }}"), "{Production true [1 2 3]}");
    assert_eq!(rendered(r#"{{ "a\"b" }} {{ `raw` }} {{ 42 }} {{ len .Shards }}"#), "a\"b raw 42 3");
}

#[test]
fn conditions_choose_a_branch_and_keep_the_lines() {
    let text = "{{ if .IsProduction }}\nprod\n{{ else }}\ndev\n{{ end }}\nafter\n";
    assert_eq!(rendered(text), "\nprod\n\n\n\nafter\n");
    let text =
        "{{ if eq .Env \"Staging\" }}\ns\n{{ else if eq .Env \"Production\" \"Prod\" }}\np\n{{ else }}\nd\n{{ end }}";
    assert_eq!(rendered(text), "\n\n\np\n\n\n");
    assert_eq!(
        rendered("{{ if and .IsProduction (ne .Env \"x\") }}y{{ end }}{{ if not .IsProduction }}n{{ end }}"),
        "y"
    );
    assert_eq!(rendered("{{ or \"\" .Env }} {{ and .IsProduction 0 }}"), "Production 0");
}

#[test]
fn range_repeats_on_one_line_and_flattens_several() {
    assert_eq!(rendered("{{ range .Shards }}s{{ . }},{{ end }}"), "s1,s2,s3,");
    let text = "{{ range .Shards }}\n  { name = \"s{{ . }}\" }, -- a shard\n{{ end }}\nnext";
    assert_eq!(rendered(text), "   { name = \"s1\" },      { name = \"s2\" },      { name = \"s3\" },   \n\n\nnext");
    let empty = TemplateData { shards: Vec::new(), ..data() };
    let out = render(Path::new("p.lua"), "{{ range .Shards }}\nx\n{{ else }}none{{ end }}", &empty).expect("renders");
    assert_eq!(out, "\n\nnone");
    assert!(refused("{{ range .Shards }}\ns = [[a\nb]]\n{{ end }}").contains("p.lua:1: {{ range .Shards }}: "));
}

#[test]
fn trim_markers_and_comments_keep_line_breaks() {
    assert_eq!(rendered("a  {{- .Env -}}  \n b{{/* a\ncomment */}}c"), "aProduction\nb\nc");
}

#[test]
fn what_is_not_supported_is_named_with_its_line() {
    let error = refused("x = 1\n\nlocal t = {{ name = \"a\" }}\n");
    assert!(error.starts_with("p.lua:3: {{ name = \"a\" }}: the pipeline template does not support"), "{error}");
    assert!(error.contains("must be written '{ {'"), "{error}");
    assert!(
        refused("{{ with .Env }}{{ end }}")
            .contains("p.lua:1: {{ with .Env }}: the pipeline template does not support 'with'")
    );
    assert!(refused("\n{{ .Env | printf \"%s\" }}").starts_with("p.lua:2: "));
    assert!(refused("{{ .Nope }}").contains("no field 'Nope'"));
    assert!(refused("a\n{{ if .IsProduction }}\nb").contains("p.lua:2: {{ if .IsProduction }} is never closed"));
    assert!(refused("{{ end }}").contains("{{ end }} without"));
    assert!(refused("x\n{{ .Env").starts_with("p.lua:2: '{{' is never closed"));
    assert!(refused("{{ eq .Env 1 }}").contains("cannot compare a string with a number"));
}

#[test]
fn files_written_as_templates_are_recognized() {
    assert_eq!(first_template_line("local t = {{ a = 1 }}\nlocal e = \"{{ .Env }}\"\n"), Some(2));
    assert_eq!(first_template_line("{{ if eq $.Env \"x\" }}{{ end }}"), Some(1));
    assert_eq!(first_template_line("local t = {{ 1 }, { 2 }}\n"), None);
}
