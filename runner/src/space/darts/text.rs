//! Parser of the textual DARTS genotype, as Python prints the authors' `Genotype` namedtuple:
//! `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), reduce=[...],
//! reduce_concat=[2, 3, 4, 5])`. Quotes may be single or double, whitespace and trailing commas
//! are free, fields may come in any order. Errors give the character offset and what was
//! expected there.
use super::genotype::{DartsOp, Genotype};
use crate::space::SpaceError;

const SPACE: &str = "darts";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(usize),
    Punct(char),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Punct(c) => format!("'{}'", c.escape_debug()),
            Tok::End => "end of input".into(),
        }
    }
}

struct Lexer {
    toks: Vec<(usize, Tok)>,
    i: usize,
}

fn err(pos: usize, expected: impl Into<String>, found: impl Into<String>) -> SpaceError {
    SpaceError::Parse {
        space: SPACE,
        pos,
        expected: expected.into(),
        found: found.into(),
    }
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, SpaceError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
        } else if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let v = text
                .parse()
                .map_err(|_| err(start, "a small non-negative integer", text))?;
            out.push((start, Tok::Int(v)));
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(
                    start,
                    format!("a closing {c} for this string"),
                    "end of input",
                ));
            }
            out.push((start, Tok::Str(chars[start + 1..i].iter().collect())));
            i += 1;
        } else if "()[],=".contains(c) {
            out.push((start, Tok::Punct(c)));
            i += 1;
        } else {
            return Err(err(
                start,
                "a name, number, string or one of ( ) [ ] , =",
                format!("'{}'", c.escape_debug()),
            ));
        }
    }
    out.push((chars.len(), Tok::End));
    Ok(out)
}

impl Lexer {
    fn peek(&self) -> &(usize, Tok) {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn punct(&mut self, c: char, what: &str) -> Result<(), SpaceError> {
        let (pos, t) = self.next();
        if t == Tok::Punct(c) {
            Ok(())
        } else {
            Err(err(pos, format!("'{c}' {what}"), t.describe()))
        }
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        if self.peek().1 == Tok::Punct(c) {
            self.next();
            true
        } else {
            false
        }
    }

    fn int(&mut self, what: &str) -> Result<usize, SpaceError> {
        match self.next() {
            (_, Tok::Int(v)) => Ok(v),
            (pos, t) => Err(err(pos, what.to_string(), t.describe())),
        }
    }

    /// `[('op', input), ...]`
    fn edges(&mut self, field: &str) -> Result<Vec<(DartsOp, usize)>, SpaceError> {
        self.punct('[', &format!("opening the list of `{field}`"))?;
        let mut v = Vec::new();
        while !self.eat(']') {
            self.punct('(', "opening an (op, input) pair")?;
            let op = match self.next() {
                (pos, Tok::Str(s)) => DartsOp::from_name(&s).ok_or_else(|| {
                    err(
                        pos,
                        format!(
                            "an op name ({})",
                            DartsOp::ALL
                                .iter()
                                .map(|o| o.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        format!("'{s}'"),
                    )
                })?,
                (pos, t) => return Err(err(pos, "a quoted op name", t.describe())),
            };
            self.punct(',', "between op and input")?;
            let input = self.int("the input state index")?;
            self.eat(',');
            self.punct(')', "closing the pair")?;
            v.push((op, input));
            if !self.eat(',') {
                self.punct(']', &format!("or ',' in the list of `{field}`"))?;
                break;
            }
        }
        Ok(v)
    }

    /// `range(a, b)` or `[2, 3, ...]`
    fn concat(&mut self, field: &str) -> Result<Vec<usize>, SpaceError> {
        match self.next() {
            (pos, Tok::Ident(name)) => {
                if name != "range" {
                    return Err(err(
                        pos,
                        format!("`range(a, b)` or a list for `{field}`"),
                        format!("`{name}`"),
                    ));
                }
                self.punct('(', "after `range`")?;
                let a = self.int("the start of the range")?;
                self.punct(',', "between range bounds")?;
                let (bpos, _) = self.peek().clone();
                let b = self.int("the end of the range")?;
                self.punct(')', "closing `range(`")?;
                if b <= a {
                    return Err(err(bpos, format!("a range end above {a}"), b.to_string()));
                }
                // Every state is a node written in the text, so no genotype has more states
                // than tokens: a longer range names none and would allocate without bound.
                let most = a.saturating_add(self.toks.len());
                if b > most {
                    return Err(err(
                        bpos,
                        format!("a range end of at most {most}"),
                        b.to_string(),
                    ));
                }
                Ok((a..b).collect())
            }
            (_, Tok::Punct('[')) => {
                let mut v = Vec::new();
                while !self.eat(']') {
                    v.push(self.int(&format!("a state index in `{field}`"))?);
                    if !self.eat(',') {
                        self.punct(']', &format!("or ',' in `{field}`"))?;
                        break;
                    }
                }
                Ok(v)
            }
            (pos, t) => Err(err(
                pos,
                format!("`range(a, b)` or a list for `{field}`"),
                t.describe(),
            )),
        }
    }
}

/// Parses the textual form.
pub(crate) fn parse(s: &str) -> Result<Genotype, SpaceError> {
    let mut lx = Lexer {
        toks: lex(s)?,
        i: 0,
    };
    match lx.next() {
        (_, Tok::Ident(n)) if n == "Genotype" => {}
        (pos, t) => return Err(err(pos, "`Genotype`", t.describe())),
    }
    lx.punct('(', "after `Genotype`")?;
    let (mut normal, mut reduce) = (None, None);
    let (mut normal_concat, mut reduce_concat) = (None, None);
    while !lx.eat(')') {
        let (pos, t) = lx.next();
        let field = match t {
            Tok::Ident(f) => f,
            t => {
                return Err(err(
                    pos,
                    "a field name (normal, normal_concat, reduce, reduce_concat)",
                    t.describe(),
                ))
            }
        };
        lx.punct('=', &format!("after `{field}`"))?;
        let dup = match field.as_str() {
            "normal" => normal.replace(lx.edges(&field)?).is_some(),
            "reduce" => reduce.replace(lx.edges(&field)?).is_some(),
            "normal_concat" => normal_concat.replace(lx.concat(&field)?).is_some(),
            "reduce_concat" => reduce_concat.replace(lx.concat(&field)?).is_some(),
            other => {
                return Err(err(
                    pos,
                    "a field name (normal, normal_concat, reduce, reduce_concat)",
                    format!("`{other}`"),
                ))
            }
        };
        if dup {
            return Err(err(
                pos,
                format!("`{field}` once"),
                format!("`{field}` again"),
            ));
        }
        if !lx.eat(',') {
            lx.punct(')', "or ',' after a field")?;
            break;
        }
    }
    let (pos, t) = lx.next();
    if t != Tok::End {
        return Err(err(pos, "end of input after `Genotype(...)`", t.describe()));
    }
    let missing = |f: &str| err(s.chars().count(), format!("a `{f}` field"), "none");
    let normal = normal.ok_or_else(|| missing("normal"))?;
    let reduce = reduce.ok_or_else(|| missing("reduce"))?;
    Genotype::new(normal, normal_concat, reduce, reduce_concat)
}
