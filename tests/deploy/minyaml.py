"""A small YAML reader for the deployment files (Python standard library only; no PyYAML).

It reads the subset of YAML the files under deploy/ use and rejects everything else with an error
naming the file and line, so a construct it does not understand can never be read wrongly:

  - documents separated by `---`; comments; block mappings and block sequences (including a
    sequence at the same indentation as its key, and `- key: value` items);
  - plain, 'single-quoted' and "double-quoted" scalars on one line; flow sequences and flow
    mappings (`[a, "b"]`, `{port: 1}`), which may span lines;
  - literal block scalars (`|`, `|-`, `|+`).

Not supported (error): anchors, aliases, tags, complex keys, folded (`>`) and multi-line plain or
quoted scalars, directives, tabs in indentation. Plain scalars resolve as in YAML 1.1 for the
unambiguous forms (null, true/false, decimal integers and floats); forms that YAML 1.1 and 1.2 read
differently (yes/no/on/off, octal, sexagesimal such as 50051:50051, ...) are rejected: quote them.
"""

import re


class YamlError(Exception):
    pass


_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_AMBIGUOUS_WORDS = {"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
                    "y", "Y", "n", "N"}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"[-+]?(0|[1-9][0-9]*)\.[0-9]*([eE][-+]?[0-9]+)?$")
# Numbers YAML 1.1 reads differently from YAML 1.2 (or from what a reader would expect).
_AMBIGUOUS_NUMBER = re.compile(
    r"[-+]?(0[0-7_]+|0b[01_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|"
    r"[0-9][0-9_]*_[0-9_]*|\.[0-9]+|\.(inf|Inf|INF|nan|NaN|NAN))$")


def resolve_plain(text, where):
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _AMBIGUOUS_WORDS or _AMBIGUOUS_NUMBER.match(text):
        raise YamlError(f"{where}: plain scalar {text!r} is ambiguous in YAML; quote it")
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text[0] in "&*!%@`|>":
        raise YamlError(f"{where}: unsupported YAML construct at {text!r}")
    return text


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "/": "/", " ": " ",
            "e": "\x1b", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _read_quoted(text, pos, where):
    """Reads a quoted scalar starting at text[pos]; returns (value, index after closing quote)."""
    quote = text[pos]
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(c)
            i += 1
        else:
            if c == "\\":
                if i + 1 >= len(text):
                    break
                e = text[i + 1]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    i += 2
                elif e in "xuU":
                    n = {"x": 2, "u": 4, "U": 8}[e]
                    out.append(chr(int(text[i + 2:i + 2 + n], 16)))
                    i += 2 + n
                else:
                    raise YamlError(f"{where}: unknown escape \\{e}")
                continue
            if c == '"':
                return "".join(out), i + 1
            out.append(c)
            i += 1
    raise YamlError(f"{where}: unterminated or multi-line quoted scalar (not supported)")


def _strip_comment(text):
    """Removes a trailing comment (a '#' at the start or after whitespace, outside quotes)."""
    i = 0
    prev = ""  # previous non-space character
    while i < len(text):
        c = text[i]
        if c in "'\"" and prev in ("", ":", "-", "[", "{", ",", "?"):
            # A quoted scalar starts here: skip to its end (an unterminated one is left to the parser).
            j = i + 1
            while j < len(text):
                if c == "'" and text[j] == "'":
                    if j + 1 < len(text) and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                if c == '"' and text[j] == "\\":
                    j += 2
                    continue
                if c == '"' and text[j] == '"':
                    break
                j += 1
            i = j + 1
            prev = c
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i]
        if c not in " \t":
            prev = c
        i += 1
    return text


def _is_seq_item(text):
    return text == "-" or text.startswith("- ")


def _split_key(text, where):
    """'key: rest' -> (key, rest); None when the text is not a mapping entry."""
    if not text or text[0] in "[{" or _is_seq_item(text):
        return None
    if text.startswith("? "):
        raise YamlError(f"{where}: complex mapping keys are not supported")
    if text[0] in "'\"":
        key, end = _read_quoted(text, 0, where)
        rest = text[end:].lstrip(" ")
        if rest == ":" or rest.startswith(": "):
            return key, rest[1:].strip()
        return None
    m = re.search(r":( |$)", text)
    if m is None:
        return None
    key = text[:m.start()].rstrip()
    if not key:
        return None
    return resolve_plain(key, where), text[m.end():].strip()


class _FlowParser:
    def __init__(self, text, where):
        self.s = text
        self.i = 0
        self.where = where

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def node(self, in_map_key=False):
        self.ws()
        if self.i >= len(self.s):
            raise YamlError(f"{self.where}: unterminated flow collection")
        c = self.s[self.i]
        if c == "[":
            self.i += 1
            items = []
            while True:
                self.ws()
                if self.i < len(self.s) and self.s[self.i] == "]":
                    self.i += 1
                    return items
                items.append(self.node())
                self.ws()
                if self.i < len(self.s) and self.s[self.i] == ",":
                    self.i += 1
                elif self.i < len(self.s) and self.s[self.i] == "]":
                    continue
                else:
                    raise YamlError(f"{self.where}: expected ',' or ']' in flow sequence")
        if c == "{":
            self.i += 1
            result = {}
            while True:
                self.ws()
                if self.i < len(self.s) and self.s[self.i] == "}":
                    self.i += 1
                    return result
                key = self.node(in_map_key=True)
                self.ws()
                if self.i >= len(self.s) or self.s[self.i] != ":":
                    raise YamlError(f"{self.where}: expected ':' in flow mapping")
                self.i += 1
                self.ws()
                value = None
                if self.i < len(self.s) and self.s[self.i] not in ",}":
                    value = self.node()
                if key in result:
                    raise YamlError(f"{self.where}: duplicate key {key!r}")
                result[key] = value
                self.ws()
                if self.i < len(self.s) and self.s[self.i] == ",":
                    self.i += 1
                elif self.i < len(self.s) and self.s[self.i] == "}":
                    continue
                else:
                    raise YamlError(f"{self.where}: expected ',' or '}}' in flow mapping")
        if c in "'\"":
            value, self.i = _read_quoted(self.s, self.i, self.where)
            return value
        start = self.i
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in ",]}":
                break
            if c == ":" and (self.i + 1 >= len(self.s) or self.s[self.i + 1] in " ,}]"):
                if in_map_key:
                    break
                raise YamlError(f"{self.where}: ': ' inside a flow scalar; quote it")
            self.i += 1
        return resolve_plain(self.s[start:self.i].strip(), self.where)


class _BlockParser:
    def __init__(self, lines, filename):
        self.lines = lines  # [(line number, raw text)]
        self.filename = filename
        self.i = 0
        self.override = {}

    def where(self, i=None):
        i = self.i if i is None else i
        lineno = self.lines[min(i, len(self.lines) - 1)][0] if self.lines else 0
        return f"{self.filename}:{lineno}"

    def line(self, i):
        if i in self.override:
            return self.override[i]
        raw = self.lines[i][1]
        stripped = raw.lstrip(" ")
        indent = len(raw) - len(stripped)
        text = _strip_comment(stripped).rstrip()
        if text.startswith("\t"):
            raise YamlError(f"{self.where(i)}: tab in indentation")
        return indent, text

    def peek(self):
        while self.i < len(self.lines):
            indent, text = self.line(self.i)
            if text:
                return indent, text
            self.i += 1
        return None

    def block(self, min_indent):
        p = self.peek()
        if p is None or p[0] < min_indent:
            return None
        indent, text = p
        if _is_seq_item(text):
            return self.sequence(indent)
        if _split_key(text, self.where()) is not None:
            return self.mapping(indent)
        self.i += 1
        return self.inline(text)

    def mapping(self, indent):
        result = {}
        while True:
            p = self.peek()
            if p is None or p[0] < indent:
                return result
            if p[0] > indent:
                raise YamlError(f"{self.where()}: unexpected indentation (multi-line scalars are "
                                "not supported)")
            if _is_seq_item(p[1]):
                raise YamlError(f"{self.where()}: sequence item where a mapping key was expected")
            kv = _split_key(p[1], self.where())
            if kv is None:
                raise YamlError(f"{self.where()}: expected 'key: value', got {p[1]!r}")
            key, rest = kv
            where = self.where()
            self.i += 1
            if key in result:
                raise YamlError(f"{where}: duplicate key {key!r}")
            result[key] = self.value(rest, indent, compact_sequence=True)

    def sequence(self, indent):
        result = []
        while True:
            p = self.peek()
            if p is None or p[0] < indent or not _is_seq_item(p[1]):
                if p is not None and p[0] > indent:
                    raise YamlError(f"{self.where()}: unexpected indentation")
                return result
            if p[0] > indent:
                raise YamlError(f"{self.where()}: unexpected indentation")
            text = p[1]
            rest = text[1:].lstrip(" ")
            offset = len(text) - len(rest)
            if rest == "":
                self.i += 1
                result.append(self.value("", indent, compact_sequence=False))
            elif _is_seq_item(rest) or _split_key(rest, self.where()) is not None:
                self.override[self.i] = (indent + offset, rest)
                result.append(self.block(indent + offset))
            else:
                self.i += 1
                result.append(self.value(rest, indent, compact_sequence=False))

    def value(self, rest, parent_indent, compact_sequence):
        if rest == "":
            p = self.peek()
            if p is None:
                return None
            if p[0] > parent_indent:
                return self.block(parent_indent + 1)
            if p[0] == parent_indent and compact_sequence and _is_seq_item(p[1]):
                return self.sequence(parent_indent)
            return None
        if rest[0] in "|>":
            return self.block_scalar(rest, parent_indent)
        return self.inline(rest)

    def inline(self, text):
        where = self.where(self.i - 1)
        if text[0] in "[{":
            # A flow collection may continue on the next lines: gather until balanced.
            while True:
                depth, k, quote = 0, 0, None
                while k < len(text):
                    c = text[k]
                    if quote:
                        if c == "\\" and quote == '"':
                            k += 1
                        elif c == quote:
                            quote = None
                    elif c in "'\"":
                        quote = c
                    elif c in "[{":
                        depth += 1
                    elif c in "]}":
                        depth -= 1
                    k += 1
                if depth <= 0:
                    break
                if self.i >= len(self.lines):
                    raise YamlError(f"{where}: unterminated flow collection")
                _, more = self.line(self.i)
                self.i += 1
                text = text + " " + more
            parser = _FlowParser(text, where)
            value = parser.node()
            parser.ws()
            if parser.i != len(text):
                raise YamlError(f"{where}: unexpected text after flow collection")
            return value
        if text[0] in "'\"":
            value, end = _read_quoted(text, 0, where)
            if text[end:].strip():
                raise YamlError(f"{where}: unexpected text after quoted scalar")
            return value
        return resolve_plain(text, where)

    def block_scalar(self, header, parent_indent):
        where = self.where(self.i - 1)
        if header not in ("|", "|-", "|+"):
            raise YamlError(f"{where}: only literal block scalars (|, |-, |+) are supported")
        content = []
        block_indent = None
        while self.i < len(self.lines):
            raw = self.lines[self.i][1]
            if raw.strip() == "":
                content.append("")
                self.i += 1
                continue
            indent = len(raw) - len(raw.lstrip(" "))
            if block_indent is None:
                if indent <= parent_indent:
                    break
                block_indent = indent
            if indent < block_indent:
                break
            content.append(raw[block_indent:])
            self.i += 1
        # Trailing blank lines belong to the scalar only with |+; give them back otherwise.
        trailing = 0
        while content and content[-1] == "":
            content.pop()
            trailing += 1
        if not content:
            return ""
        text = "\n".join(content)
        if header == "|":
            return text + "\n"
        if header == "|-":
            return text
        return text + "\n" * (trailing + 1)


def load_all(text, filename):
    """Returns the non-empty documents of `text`."""
    docs, current = [], []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw.startswith("%"):
            raise YamlError(f"{filename}:{lineno}: YAML directives are not supported")
        if re.match(r"---(\s|$)", raw):
            if _strip_comment(raw[3:]).strip():
                raise YamlError(f"{filename}:{lineno}: content after '---' is not supported")
            docs.append(current)
            current = []
            continue
        if re.match(r"\.\.\.(\s|$)", raw):
            docs.append(current)
            current = []
            continue
        current.append((lineno, raw))
    docs.append(current)
    result = []
    for lines in docs:
        parser = _BlockParser(lines, filename)
        value = parser.block(0)
        if parser.peek() is not None:
            raise YamlError(f"{parser.where()}: could not parse from here")
        if value is not None:
            result.append(value)
    return result


def load_file(path, display=None):
    with open(path, encoding="utf-8") as f:
        return load_all(f.read(), display or path)
