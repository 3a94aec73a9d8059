"""Split knowledge-base Markdown into one section per `##` heading, with a content hash."""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

# Bump when the embedded text of a section changes shape, so every section is re-embedded once.
CHUNKER_VERSION = "1"
LANGUAGES = ("da", "en")
# e5-small reads at most 512 tokens; a longer section is split on paragraphs so nothing is cut off.
MAX_SECTION_CHARS = 1800

_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_H2 = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^(```|~~~)")
_BLANKS = re.compile(r"\n{3,}")
_SLUG_DROP = re.compile(r"[^a-z0-9æøå]+")


@dataclass(frozen=True, slots=True)
class Section:
    """One `##` section of a knowledge-base document (or one part of a long section)."""

    doc: str
    language: str
    title: str
    heading: str
    text: str
    part: int = 1

    @property
    def section_id(self) -> str:
        """Stable id: language/doc#heading-slug, with the part number when a section was split."""
        suffix = f"~{self.part}" if self.part > 1 else ""
        return f"{self.language}/{self.doc}#{slugify(self.heading)}{suffix}"

    @property
    def embed_text(self) -> str:
        """What is embedded: title and heading give a short section its topic."""
        return f"{self.title}: {self.heading}\n{self.text}"

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for value in (CHUNKER_VERSION, self.language, self.doc, self.title, self.heading, self.text):
            digest.update(value.encode("utf-8") + b"\x00")
        return digest.hexdigest()


def slugify(text: str) -> str:
    """Lower-case ASCII-ish slug that keeps Danish letters (headings are Danish too)."""
    folded = unicodedata.normalize("NFC", text).casefold()
    return _SLUG_DROP.sub("-", folded).strip("-") or "section"


def _split_long(text: str, limit: int) -> list[str]:
    """Greedy paragraph packing; a single paragraph over the limit stays whole (the model truncates)."""
    parts: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if current and len(candidate) > limit:
            parts.append(current)
            current = paragraph
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def split_markdown(markdown: str, doc: str, language: str, max_chars: int = MAX_SECTION_CHARS) -> list[Section]:
    """Sections of one document; text before the first `##` is kept under the title as heading."""
    title = doc
    heading: str | None = None
    buffer: list[str] = []
    raw_sections: list[tuple[str, str]] = []
    in_fence = False

    def flush() -> None:
        body = _BLANKS.sub("\n\n", "\n".join(buffer)).strip()
        if body:
            raw_sections.append((heading or title, body))

    for line in markdown.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
        if not in_fence:
            h1 = _H1.match(line)
            if h1 and heading is None and not buffer:
                title = h1.group(1)
                continue
            h2 = _H2.match(line)
            if h2:
                flush()
                heading, buffer = h2.group(1), []
                continue
        buffer.append(line)
    flush()

    sections: list[Section] = []
    seen: dict[str, int] = {}
    for head, body in raw_sections:
        for part_text in _split_long(body, max_chars):
            slug = slugify(head)
            seen[slug] = seen.get(slug, 0) + 1
            sections.append(Section(doc, language, title, head, part_text, seen[slug]))
    return sections



# Words that carry no topic, removed before lexical matching (the dense model sees the full text).
# Danish: the Snowball list plus the question words and modal verbs the English list also covers.
DANISH_STOPWORDS = frozenset("""
ad af alle alt anden at blev blive bliver da de dem den denne der deres det dette dig din disse dog du efter
eller en end er et for fra ham han hans har havde have hende hendes her hos hun hvad hvis hvor i ikke ind jeg
jer jo kunne man mange med meget men mig min mine mit mod ned noget nogle nu når og også om op os over på selv
sig sin sine sit skal skulle som sådan thi til ud under var vi vil ville vor være været
hvordan hvornår hvorfor hvilken hvilket hvilke hvem kan må får få fik så jeres vores nogen hele mere mest lige
bare gerne ja nej eneste hver hvert sammen igen
""".split())
GREETING_WORDS = frozenset("hej hejsa kære tak mvh venlig venlige hilsen hilsner hi hello dear thanks thank "
                           "regards kind best please".split())
_TOKEN = re.compile(r"\w+")


def lexical_text(text: str, stopwords: frozenset[str]) -> str:
    """Lower-cased words without stopwords: what the character n-gram index compares."""
    return " ".join(word for word in _TOKEN.findall(text.casefold()) if word not in stopwords)
