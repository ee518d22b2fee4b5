//! The template as a tree of text and actions, and its rendering. Every node's output holds
//! as many line breaks as its source (see `line_breaks`): a branch not taken leaves its line
//! breaks behind, so the lines after it stay where they were.

use super::expr::{self, Action, Expr};
use super::lex::{Token, newlines};
use super::{Failure, TemplateData, flatten};

#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    LineBreaks(usize),
    Print { expr: Expr, line: usize, source: String },
    If { branches: Vec<Branch>, otherwise: Vec<Node> },
    Range { expr: Expr, line: usize, source: String, body: Vec<Node>, otherwise: Vec<Node> },
}

#[derive(Debug)]
pub(super) struct Branch {
    condition: Expr,
    line: usize,
    source: String,
    body: Vec<Node>,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    Else { line_breaks: usize },
    ElseIf { branch: Branch, line_breaks: usize },
    End { line_breaks: usize },
}

pub(super) fn tree(tokens: Vec<Token<'_>>) -> Result<Vec<Node>, Failure> {
    let mut tokens = tokens.into_iter();
    let (nodes, end, line) = list(&mut tokens)?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End { .. } => Err(Failure::at(line, "{{ end }} without an {{ if }} or a {{ range }} before it")),
        Stop::Else { .. } | Stop::ElseIf { .. } => {
            Err(Failure::at(line, "{{ else }} without an {{ if }} or a {{ range }} before it"))
        }
    }
}

/// Nodes up to an `else`, an `end` or the end of the file; the line of what ended them.
fn list(tokens: &mut std::vec::IntoIter<Token<'_>>) -> Result<(Vec<Node>, Stop, usize), Failure> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.next() {
        let (body, line, line_breaks) = match token {
            Token::Text(text) => {
                nodes.push(Node::Text(text));
                continue;
            }
            Token::Comment { newlines } => {
                nodes.push(Node::LineBreaks(newlines));
                continue;
            }
            Token::Action { body, line, newlines } => (body, line, newlines),
        };
        let source = format!("{{{{{body}}}}}");
        let action = expr::action(body).map_err(|why| {
            let hint = if why.lua_like {
                "; with -e, -p or --shards the file is a template, so a Lua table written '{{' must be written '{ {'"
            } else {
                ""
            };
            Failure::at(
                line,
                format!(
                    "{source}: the pipeline template does not support {} (only .Env, .IsProduction, .Shards, ., $, \
                     if/else if/else, range, end, eq, ne, not, and, or, len){hint}",
                    why.message
                ),
            )
        })?;
        match action {
            Action::Print(expr) => {
                nodes.push(Node::Print { expr, line, source });
                nodes.push(Node::LineBreaks(line_breaks));
            }
            Action::If(condition) => {
                nodes.push(Node::LineBreaks(line_breaks));
                let mut branches = Vec::new();
                let mut branch = Branch { condition, line, source, body: Vec::new() };
                let (otherwise, closing) = loop {
                    let (body, end, _) = list(tokens)?;
                    // (After the line breaks of an `else if` marker, if any.)
                    branch.body.extend(body);
                    match end {
                        Stop::Eof => {
                            return Err(Failure::at(
                                line,
                                format!("{} is never closed with {{{{ end }}}}", branch.source),
                            ));
                        }
                        Stop::End { line_breaks } => {
                            branches.push(branch);
                            break (Vec::new(), line_breaks);
                        }
                        Stop::ElseIf { branch: next, line_breaks } => {
                            branches.push(branch);
                            branch = next;
                            branch.body.push(Node::LineBreaks(line_breaks));
                        }
                        Stop::Else { line_breaks } => {
                            branches.push(branch);
                            let (mut body, end, else_line) = list(tokens)?;
                            body.insert(0, Node::LineBreaks(line_breaks));
                            let Stop::End { line_breaks } = end else {
                                return Err(Failure::at(
                                    else_line,
                                    "{{ if }}'s {{ else }} is not closed with {{ end }}",
                                ));
                            };
                            break (body, line_breaks);
                        }
                    }
                };
                nodes.push(Node::If { branches, otherwise });
                nodes.push(Node::LineBreaks(closing));
            }
            Action::Range(expr) => {
                nodes.push(Node::LineBreaks(line_breaks));
                let (body, end, end_line) = list(tokens)?;
                let (otherwise, end) = match end {
                    Stop::Else { line_breaks } => {
                        let (mut otherwise, end, _) = list(tokens)?;
                        otherwise.insert(0, Node::LineBreaks(line_breaks));
                        (otherwise, end)
                    }
                    Stop::ElseIf { .. } => return Err(Failure::at(end_line, "{{ else if }} in a {{ range }}")),
                    end => (Vec::new(), end),
                };
                let Stop::End { line_breaks } = end else {
                    return Err(Failure::at(line, format!("{source} is never closed with {{{{ end }}}}")));
                };
                nodes.push(Node::Range { expr, line, source, body, otherwise });
                nodes.push(Node::LineBreaks(line_breaks));
            }
            Action::Else => return Ok((nodes, Stop::Else { line_breaks }, line)),
            Action::ElseIf(condition) => {
                let branch = Branch { condition, line, source, body: Vec::new() };
                return Ok((nodes, Stop::ElseIf { branch, line_breaks }, line));
            }
            Action::End => return Ok((nodes, Stop::End { line_breaks }, line)),
        }
    }
    Ok((nodes, Stop::Eof, 0))
}

/// How many line breaks the source of `nodes` holds (and so their output).
fn line_breaks(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|node| match node {
            Node::Text(text) => newlines(text),
            Node::LineBreaks(n) => *n,
            Node::Print { .. } => 0,
            Node::If { branches, otherwise } => {
                branches.iter().map(|b| line_breaks(&b.body)).sum::<usize>() + line_breaks(otherwise)
            }
            Node::Range { body, otherwise, .. } => line_breaks(body) + line_breaks(otherwise),
        })
        .sum()
}

/// A value in the template: Go's string, bool, int, []int, and the data itself.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<i64>),
    Data,
}

impl Value {
    fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::List(items) => !items.is_empty(),
            Value::Data => true,
        }
    }

    /// As Go's fmt prints it.
    fn print(&self, data: &TemplateData, out: &mut String) {
        let list = |items: &[i64]| format!("[{}]", items.iter().map(i64::to_string).collect::<Vec<_>>().join(" "));
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::List(items) => out.push_str(&list(items)),
            Value::Data => out.push_str(&format!("{{{} {} {}}}", data.env, data.is_production, list(&data.shards))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "a number",
            Value::List(_) => "a list",
            Value::Data => "the data",
        }
    }
}

struct Scope<'a> {
    data: &'a TemplateData,
    dot: Value,
}

pub(super) fn render(nodes: &[Node], data: &TemplateData, out: &mut String) -> Result<(), Failure> {
    render_in(nodes, &Scope { data, dot: Value::Data }, out)
}

fn render_in(nodes: &[Node], scope: &Scope<'_>, out: &mut String) -> Result<(), Failure> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::LineBreaks(n) => out.push_str(&"\n".repeat(*n)),
            Node::Print { expr, line, source } => {
                let value = eval(expr, scope).map_err(|why| Failure::at(*line, format!("{source}: {why}")))?;
                value.print(scope.data, out);
            }
            Node::If { branches, otherwise } => {
                let mut chosen = None;
                for (i, branch) in branches.iter().enumerate() {
                    let value = eval(&branch.condition, scope)
                        .map_err(|why| Failure::at(branch.line, format!("{}: {why}", branch.source)))?;
                    if value.truth() {
                        chosen = Some(i);
                        break;
                    }
                }
                let chosen = chosen.unwrap_or(branches.len());
                for (i, branch) in branches.iter().enumerate() {
                    if i == chosen {
                        render_in(&branch.body, scope, out)?;
                    } else {
                        out.push_str(&"\n".repeat(line_breaks(&branch.body)));
                    }
                }
                if chosen == branches.len() {
                    render_in(otherwise, scope, out)?;
                } else {
                    out.push_str(&"\n".repeat(line_breaks(otherwise)));
                }
            }
            Node::Range { expr, line, source, body, otherwise } => {
                let failed = |why: String| Failure::at(*line, format!("{source}: {why}"));
                let items = match eval(expr, scope).map_err(failed)? {
                    Value::List(items) => items,
                    other => {
                        return Err(failed(format!(
                            "range over {}: only a list (.Shards) can be ranged over",
                            other.kind()
                        )));
                    }
                };
                let body_breaks = line_breaks(body);
                if items.is_empty() {
                    out.push_str(&"\n".repeat(body_breaks));
                    render_in(otherwise, scope, out)?;
                    continue;
                }
                let mut iterations = Vec::with_capacity(items.len());
                for item in items {
                    let mut text = String::new();
                    render_in(body, &Scope { data: scope.data, dot: Value::Int(item) }, &mut text)?;
                    iterations.push(text);
                }
                if iterations.len() == 1 || body_breaks == 0 {
                    out.push_str(&iterations.concat());
                } else {
                    // Several iterations of several lines: they share the range's first line, so
                    // that the lines after it keep their numbers.
                    for text in &iterations {
                        let flat = flatten::one_line(text).map_err(|what| {
                            failed(format!(
                                "the iterations of a range over several lines are put on one line (to keep \
                                 the file's line numbers), and this one holds {what}"
                            ))
                        })?;
                        out.push_str(&flat);
                    }
                    out.push_str(&"\n".repeat(body_breaks));
                }
                out.push_str(&"\n".repeat(line_breaks(otherwise)));
            }
        }
    }
    Ok(())
}

fn eval(expr: &Expr, scope: &Scope<'_>) -> Result<Value, String> {
    Ok(match expr {
        Expr::Dot => scope.dot.clone(),
        Expr::Root => Value::Data,
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Int(n) => Value::Int(*n),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::Field { rooted, names } => {
            let mut value = if *rooted { Value::Data } else { scope.dot.clone() };
            for name in names {
                value = match (&value, name.as_str()) {
                    (Value::Data, "Env") => Value::Str(scope.data.env.clone()),
                    (Value::Data, "IsProduction") => Value::Bool(scope.data.is_production),
                    (Value::Data, "Shards") => Value::List(scope.data.shards.clone()),
                    (Value::Data, _) => {
                        return Err(format!("no field '{name}' (there are .Env, .IsProduction and .Shards)"));
                    }
                    (other, _) => {
                        let hint = if matches!(scope.dot, Value::Int(_)) { " (inside range, write $.Env)" } else { "" };
                        return Err(format!("{} has no field '{name}'{hint}", other.kind()));
                    }
                };
            }
            value
        }
        Expr::Call(function, args) => {
            let values = args.iter().map(|arg| eval(arg, scope)).collect::<Result<Vec<_>, _>>()?;
            call(function, values)?
        }
    })
}

fn call(function: &str, args: Vec<Value>) -> Result<Value, String> {
    let count = |wanted: usize| {
        if args.len() == wanted {
            Ok(())
        } else {
            Err(format!("{function} takes {wanted} argument(s), got {}", args.len()))
        }
    };
    let equal = |a: &Value, b: &Value| match (a, b) {
        (Value::Str(_), Value::Str(_)) | (Value::Bool(_), Value::Bool(_)) | (Value::Int(_), Value::Int(_)) => {
            Ok(a == b)
        }
        _ => Err(format!("{function}: cannot compare {} with {}", a.kind(), b.kind())),
    };
    match function {
        "eq" => {
            if args.len() < 2 {
                return Err("eq takes 2 or more arguments".to_owned());
            }
            for other in &args[1..] {
                if equal(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            count(2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "not" => {
            count(1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "and" | "or" => {
            if args.is_empty() {
                return Err(format!("{function} takes 1 or more arguments"));
            }
            // Go's: the first argument that decides (false for and, true for or), else the last.
            let mut args = args;
            let decides = function == "or";
            let at = args.iter().position(|arg| arg.truth() == decides).unwrap_or(args.len() - 1);
            Ok(args.swap_remove(at))
        }
        "len" => {
            count(1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(items) => Ok(Value::Int(items.len() as i64)),
                other => Err(format!("len of {}", other.kind())),
            }
        }
        _ => Err(format!("no function '{function}'")),
    }
}
