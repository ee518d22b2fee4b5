//! An action's words: `if`, `else`, `else if`, `range`, `end`, or a pipeline to print — the
//! operands `.Env`, `.IsProduction`, `.Shards`, `.`, `$`, strings, numbers, `true`/`false`, the
//! functions `eq ne not and or len` and parentheses. Everything else of Go's text/template is
//! refused with what it was.

/// What an action asks for.
#[derive(Debug)]
pub(super) enum Action {
    Print(Expr),
    If(Expr),
    ElseIf(Expr),
    Else,
    Range(Expr),
    End,
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    /// `.` (the element inside `range`, else the data).
    Dot,
    /// `.Env`, `$.Env`: a field of the dot, or of the data with `$`.
    Field {
        rooted: bool,
        names: Vec<String>,
    },
    /// `$`: the data.
    Root,
    Str(String),
    Int(i64),
    Bool(bool),
    Call(&'static str, Vec<Expr>),
}

pub(super) const FUNCTIONS: [&str; 6] = ["eq", "ne", "not", "and", "or", "len"];

/// Why an action cannot be read; `lua_like` when it does not start like a template action at
/// all (a Lua table constructor `{{ … }}`, most likely).
#[derive(Debug)]
pub(super) struct Refused {
    pub message: String,
    pub lua_like: bool,
}

fn refused(message: impl Into<String>) -> Refused {
    Refused { message: message.into(), lua_like: false }
}

pub(super) fn action(body: &str) -> Result<Action, Refused> {
    let words = words(body)?;
    let keyword = match words.first() {
        Some(Word::Ident(name)) => name.as_str(),
        Some(_) => "",
        None => return Err(refused("an empty action")),
    };
    let rest = &words[1.min(words.len())..];
    match keyword {
        "if" => Ok(Action::If(whole(rest)?)),
        "range" => {
            if rest.iter().any(|word| matches!(word, Word::Variable(name) if name != "$")) {
                return Err(refused("range with variables ($i, $x := …)"));
            }
            Ok(Action::Range(whole(rest)?))
        }
        "end" if rest.is_empty() => Ok(Action::End),
        "else" if rest.is_empty() => Ok(Action::Else),
        "else" if matches!(rest.first(), Some(Word::Ident(name)) if name == "if") => {
            Ok(Action::ElseIf(whole(&rest[1..])?))
        }
        "with" | "define" | "template" | "block" | "break" | "continue" | "else" | "end" => {
            Err(refused(format!("'{keyword}'")))
        }
        _ => {
            let templated = matches!(words[0], Word::Field(_) | Word::Variable(_));
            whole(&words).map(Action::Print).map_err(|why| Refused { lua_like: !templated, ..why })
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Word {
    Ident(String),
    Field(Vec<String>),
    Variable(String),
    Str(String),
    Int(i64),
    Open,
    Close,
    Other(String),
}

fn words(body: &str) -> Result<Vec<Word>, Refused> {
    let mut words = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        let word_end = |from: usize| {
            body[from..]
                .find(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == '|')
                .map_or(body.len(), |n| from + n)
        };
        let word = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '(' | ')' | '|' => {
                chars.next();
                words.push(match c {
                    '(' => Word::Open,
                    ')' => Word::Close,
                    _ => Word::Other("|".to_owned()),
                });
                continue;
            }
            '"' => {
                let (text, len) = quoted(&body[i..]).ok_or_else(|| refused("an unterminated string"))?;
                words.push(Word::Str(text));
                advance(&mut chars, i + len);
                continue;
            }
            '`' => {
                let len = body[i + 1..].find('`').ok_or_else(|| refused("an unterminated raw string"))?;
                words.push(Word::Str(body[i + 1..i + 1 + len].to_owned()));
                advance(&mut chars, i + len + 2);
                continue;
            }
            _ => {
                let end = word_end(i);
                advance(&mut chars, end);
                &body[i..end]
            }
        };
        words.push(classify(word));
    }
    Ok(words)
}

fn advance(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, to: usize) {
    while chars.peek().is_some_and(|&(i, _)| i < to) {
        chars.next();
    }
}

fn classify(word: &str) -> Word {
    let is_name = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
    };
    let fields = |s: &str| s.split('.').skip(1).map(str::to_owned).collect::<Vec<_>>();
    if word == "." {
        Word::Field(Vec::new())
    } else if word.starts_with('.') && word[1..].split('.').all(is_name) {
        Word::Field(fields(word))
    } else if word == "$" || word.starts_with('$') && word[1..].split('.').all(|s| s.is_empty() || is_name(s)) {
        Word::Variable(word.to_owned())
    } else if is_name(word) {
        Word::Ident(word.to_owned())
    } else if let Ok(n) = word.parse::<i64>() {
        Word::Int(n)
    } else {
        Word::Other(word.to_owned())
    }
}

/// A Go double-quoted string at the start of `text`: its value and its length in bytes.
fn quoted(text: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, i + 1)),
            '\n' => return None,
            '\\' => value.push(match chars.next()?.1 {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            }),
            c => value.push(c),
        }
    }
    None
}

/// A whole pipeline: nothing may be left over.
fn whole(words: &[Word]) -> Result<Expr, Refused> {
    let mut at = 0;
    let expr = command(words, &mut at)?;
    match words.get(at) {
        None => Ok(expr),
        Some(Word::Other(text)) if text == "|" => Err(refused("pipes ('|')")),
        Some(_) => Err(refused("arguments after a value that is not a function")),
    }
}

/// A function call with its arguments, or a single operand.
fn command(words: &[Word], at: &mut usize) -> Result<Expr, Refused> {
    if let Some(Word::Ident(name)) = words.get(*at)
        && let Some(function) = FUNCTIONS.iter().find(|f| **f == name)
    {
        *at += 1;
        let mut args = Vec::new();
        while *at < words.len()
            && !matches!(words[*at], Word::Close)
            && !matches!(&words[*at], Word::Other(t) if t == "|")
        {
            args.push(operand(words, at)?);
        }
        return Ok(Expr::Call(function, args));
    }
    operand(words, at)
}

fn operand(words: &[Word], at: &mut usize) -> Result<Expr, Refused> {
    let word = words.get(*at).ok_or_else(|| refused("a missing value"))?;
    *at += 1;
    Ok(match word {
        Word::Field(names) if names.is_empty() => Expr::Dot,
        Word::Field(names) => Expr::Field { rooted: false, names: names.clone() },
        Word::Variable(name) if name == "$" => Expr::Root,
        Word::Variable(name) if name.starts_with("$.") => {
            Expr::Field { rooted: true, names: name[2..].split('.').map(str::to_owned).collect() }
        }
        Word::Variable(name) => return Err(refused(format!("variables ({name})"))),
        Word::Str(text) => Expr::Str(text.clone()),
        Word::Int(n) => Expr::Int(*n),
        Word::Ident(name) if name == "true" || name == "false" => Expr::Bool(name == "true"),
        Word::Ident(name) if FUNCTIONS.contains(&name.as_str()) => {
            return Err(refused(format!("'{name}' as an argument: put it in parentheses")));
        }
        Word::Ident(name) => return Err(refused(format!("the function '{name}'"))),
        Word::Open => {
            let inner = command(words, at)?;
            if words.get(*at) != Some(&Word::Close) {
                return Err(refused("a '(' that is not closed"));
            }
            *at += 1;
            inner
        }
        Word::Close => return Err(refused("an unexpected ')'")),
        Word::Other(text) if text == "|" => return Err(refused("pipes ('|')")),
        Word::Other(text) => return Err(refused(format!("'{text}'"))),
    })
}
