"""HTML to plain text with the stdlib parser, keeping apart the text a reader would never see."""

import re
from html.parser import HTMLParser
from typing import NamedTuple

_SKIP = frozenset({"script", "style", "head", "title", "template", "xml", "svg", "object", "iframe"})
_BLOCK = frozenset(
    {
        "p", "div", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
        "pre", "hr", "dl", "dt", "dd", "section", "article", "header", "footer", "address", "center",
        "form", "fieldset", "figure", "figcaption", "main", "nav", "aside", "caption", "body", "html",
    }
)
_CELL = frozenset({"td", "th"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
# Tags a browser closes implicitly when a sibling of the same kind starts, and where that search stops.
_AUTO_CLOSE = frozenset({"p", "li", "td", "th", "tr", "option", "dt", "dd"})
_SCOPE = frozenset({"table", "ul", "ol", "dl", "div", "body", "html", "blockquote", "select"})
_MAX_STACK = 512  # deeper nesting is hostile; bounded so that closing tags stay cheap
_SEARCH_DEPTH = 64

_HIDING_STYLE = re.compile(
    r"display:none|visibility:hidden|mso-hide:all|opacity:0(?:\.0+)?(?:;|$)"
    r"|font-size:(?:0(?:\.0+)?(?:px|pt|em|rem|%)?|1px|1pt)(?:;|$)"
    r"|max-height:0(?:px)?(?:;|$)(?=.*overflow:hidden)|(?<![-\w])height:0(?:px)?(?:;|$)(?=.*overflow:hidden)"
)
_COLOR = re.compile(r"(?:^|;)color:([^;]+)")
_BACKGROUND = re.compile(r"(?:^|;)background(?:-color)?:([^;]+)")
_WHITE = frozenset({"#fff", "#ffffff", "white", "rgb(255,255,255)", "#fefefe", "#fdfdfd"})
# Cheap test that decides whether an HTML alternative is worth parsing just to look for hidden text.
_MAY_HIDE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide|opacity\s*:\s*0|font-size\s*:\s*(?:0|1p)"
    r"|max-height\s*:\s*0|[\s'\"]hidden[\s>=/]|color\s*:\s*(?:#fff|white|rgb\(\s*255)",
    re.I,
)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")  # not U+00A0: Outlook's "&nbsp;" paragraph is a deliberate blank line
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufeff\ufffe\uffff\ud800-\udfff]")  # lone surrogates: utf-7
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x0c\x85]")
_BLANK_RUN = re.compile(r"\n{3,}")
_LINE_SPACES = re.compile(r" *\t[ \t]*| {2,}")


class HtmlText(NamedTuple):
    text: str  # what a reader sees
    hidden: str  # text present in the markup but styled out of sight


class _Frame(NamedTuple):
    tag: str
    skip: bool
    hidden: bool
    background: str | None


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self.stack: list[_Frame] = []
        self.open: dict[str, int] = {}  # open elements by tag name

    def _newline(self, hard: bool = False) -> None:
        while self.visible and self.visible[-1] == " ":  # inter-tag whitespace would leave a blank line
            self.visible.pop()
        if hard or (self.visible and not self.visible[-1].endswith("\n")):
            self.visible.append("\n")
        self._hidden_break()

    def _hidden_break(self) -> None:
        if self.hidden and not self.hidden[-1].endswith("\n"):
            self.hidden.append("\n")

    def _close(self, tag: str, stop: frozenset[str] = frozenset()) -> bool:
        if not self.open.get(tag):  # stray end tags are common; no need to search for them
            return False
        for depth in range(len(self.stack) - 1, max(-1, len(self.stack) - 1 - _SEARCH_DEPTH), -1):
            name = self.stack[depth].tag
            if name == tag:
                for frame in self.stack[depth:]:
                    self.open[frame.tag] -= 1
                del self.stack[depth:]
                return True
            if name in stop:
                return False
        return False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _AUTO_CLOSE:
            self._close(tag, _SCOPE)
        elif tag == "body":
            self._close("head")
        if tag in _BLOCK:
            self._newline()
        elif tag in _CELL and self.visible and not self.visible[-1].endswith(("\n", "\t")):
            self.visible.append("\t")
        if tag == "br":
            self._newline(hard=True)
        if tag in _VOID or len(self.stack) >= _MAX_STACK:  # past the cap, text takes the deepest frame's state
            return
        parent = self.stack[-1] if self.stack else _Frame("", False, False, None)
        values = dict(attrs)
        style = (values.get("style") or "").lower().replace(" ", "").replace("!important", "")
        background = parent.background
        if bg := _BACKGROUND.search(style):
            background = bg.group(1).strip()
        elif values.get("bgcolor"):
            background = (values.get("bgcolor") or "").strip().lower()
        hidden = parent.hidden or "hidden" in values or bool(style and _HIDING_STYLE.search(style))
        if not hidden and (color := _COLOR.search(style)):
            value = color.group(1).strip()
            hidden = value in _WHITE and (background is None or background in _WHITE) or value == background
        self.stack.append(_Frame(tag, parent.skip or tag in _SKIP, hidden, background))
        self.open[tag] = self.open.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK or tag == "br":
            self._newline(hard=tag == "br")

    def handle_endtag(self, tag: str) -> None:
        if self._close(tag) and tag in _BLOCK:
            self._newline()
        if not (self.stack and self.stack[-1].hidden):
            self._hidden_break()  # each hidden element on its own line

    def handle_data(self, data: str) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.skip:
            return
        text = _SPACES.sub(" ", data)
        if text == " " and (not self.visible or self.visible[-1].endswith(("\n", "\t", " "))):
            return
        if frame is not None and frame.hidden:
            self.hidden.append(text)
            return
        self._hidden_break()
        self.visible.append(text)


def normalise_text(text: str) -> str:
    """One newline convention and no control characters; line content is otherwise untouched."""
    return _CONTROL.sub("", _NEWLINES.sub("\n", text)).replace("\xa0", " ")


def tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank lines at either end."""
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


def clean_text(text: str) -> str:
    """Normalised and tidied text, ready to store."""
    return tidy_text(normalise_text(text))


def html_to_text(raw_html: str) -> HtmlText:
    """Visible text of an HTML body (block elements become line breaks) and the hidden text apart."""
    parser = _Extractor()
    try:
        parser.feed(raw_html)
        parser.close()
    except (AssertionError, ValueError, IndexError):  # malformed markup the stdlib parser gives up on
        pass
    lines = (_LINE_SPACES.sub(lambda m: "\t" if "\t" in m.group() else " ", line).strip(" \t")
             for line in "".join(parser.visible).split("\n"))
    hidden = (" ".join(line.split()) for line in "".join(parser.hidden).split("\n"))
    return HtmlText(clean_text("\n".join(lines)), clean_text("\n".join(line for line in hidden if line)))


def hidden_html_text(raw_html: str) -> str:
    """Text styled out of sight (display:none, visibility:hidden, zero font size, white on white)."""
    if not _MAY_HIDE.search(raw_html):
        return ""
    return html_to_text(raw_html).hidden


def may_hide_text(raw_html: str) -> bool:
    """Whether the markup uses any hiding technique at all, so a full parse is worth its cost."""
    return _MAY_HIDE.search(raw_html) is not None
