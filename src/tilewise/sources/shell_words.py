"""The words of one POSIX `sh` command line, as Just hands a recipe line to `sh -c`.

Only what a Mapterhorn Justfile line needs: blanks split words, `#` at the start of a word starts a
comment, single quotes, double quotes (with `\\` before `$ \\` " \\`), a backslash outside quotes.
Expansions (`$`, backquotes), redirections, pipes and lists have no recipe equivalent and are
refused, and so is an unquoted brace expansion (`{a,b}`, `{1..3}`), which only some `sh` perform, and a
quoted character inside `[…]` (`[a\\-z]`), which a glob pattern cannot keep literal.
Each word also comes as a glob pattern in which quoted or escaped `* ? [` are literal (written
`[*]`, `[?]`, `[[]`), so `rm "a*.tif"` removes only a file named `a*.tif`, as sh would.
"""

from __future__ import annotations

from dataclasses import dataclass

_GLOB = "*?["
_NOT_MAPPABLE = set(";&|<>()`$")


class ShellSyntaxError(ValueError):
    """A line this parser cannot read the way sh would (or that needs more than a plain command)."""


@dataclass(frozen=True)
class Word:
    value: str  # the word after quote removal
    pattern: str  # the same word as a glob pattern (fnmatch syntax)


def literal(text: str) -> str:
    """`text` as a glob pattern that matches only itself."""
    return "".join(f"[{c}]" if c in _GLOB else c for c in text)


def split(line: str) -> list[Word]:
    return _scan(line)[0]


def comment(line: str) -> str | None:
    """The comment that ends `line` (the text after a `#` that starts a word), or None."""
    return _scan(line)[1]


def _scan(line: str) -> tuple[list[Word], str | None]:
    if "{{" in line:
        raise ShellSyntaxError("it uses a Just interpolation {{…}}")
    words: list[Word] = []
    value: list[str] = []
    pattern: list[str] = []
    in_word = False
    brace = -1  # where the word's first unquoted `{` is
    bracket = -1  # where the word's unquoted `[` not yet closed by an unquoted `]` is
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t":
            if in_word:
                words.append(Word("".join(value), "".join(pattern)))
                value, pattern, in_word, brace, bracket = [], [], False, -1, -1
            i += 1
            continue
        if c == "#" and not in_word:
            return words, line[i + 1 :].strip()
        in_word = True
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unclosed single quote")
            quoted, i = line[i + 1 : end], end + 1
        elif c == '"':
            quoted, i = _double_quoted(line, i + 1)
        elif c == "\\":
            if i + 1 >= len(line):
                raise ShellSyntaxError("a line continuation (\\ at the end)")
            quoted, i = line[i + 1], i + 2
        elif c in _NOT_MAPPABLE:
            raise ShellSyntaxError(f"shell syntax {c!r} (expansion, redirection or list)")
        else:
            if c == "[" and bracket < 0:
                bracket = i
            elif c == "]":
                bracket = -1
            if c == "{" and brace < 0:
                brace = i
            elif c == "}" and brace >= 0 and ("," in line[brace:i] or ".." in line[brace:i]):
                raise ShellSyntaxError(
                    f"a brace expansion {line[brace : i + 1]}: bash (sh on macOS) expands it into several words, "
                    "dash (sh on Debian) keeps it as it is, so the names depend on the machine; write each name"
                )
            value.append(c)
            pattern.append(c)
            i += 1
            continue
        if bracket >= 0 and quoted:  # sh reads it literally; a glob can only say so outside brackets
            raise ShellSyntaxError(
                f"a quoted character inside a bracket expression {line[bracket:i]}…: sh takes it literally, where "
                "unquoted it may be a range or a negation, and a glob here cannot say so; write the names one by one"
            )
        value.append(quoted)
        pattern.append(literal(quoted))
    if in_word:
        words.append(Word("".join(value), "".join(pattern)))
    return words, None


def _double_quoted(line: str, i: int) -> tuple[str, int]:
    text: list[str] = []
    while i < len(line):
        c = line[i]
        if c == '"':
            return "".join(text), i + 1
        if c == "\\" and i + 1 < len(line) and line[i + 1] in '$`"\\':
            text.append(line[i + 1])
            i += 2
            continue
        if c in "$`":
            raise ShellSyntaxError("shell expansion ($ or `) inside double quotes")
        text.append(c)
        i += 1
    raise ShellSyntaxError("unclosed double quote")
