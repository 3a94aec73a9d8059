"""The question a routine e-mail asks of the knowledge base: its subject and the sentences that ask.

Embedding a query costs about 1.6 ms per token on one core, so the query is the part that carries the
question, not the greeting, the sign-off or the story around it. It also keeps what leaves the sweep for
the embedder to the minimum necessary: no sign-off names, no e-mail addresses, no numbers (CPR, phone,
order and reference numbers), which never match a knowledge-base section anyway.
"""

import re

# A query longer than this gains little: the knowledge base is matched on topic, not on detail.
MAX_QUESTION_CHARS = 160

_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hej(?:sa)?|kære|goddag|god (?:morgen|eftermiddag)"
    r"|til)\b[^.?!\n]{0,40}?[,.!:]?\s*$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^(?:(?:best|kind|warm|many)?\s*regards|thanks?(?: you)?(?: in advance)?|cheers|sincerely|best(?: wishes)?|"
    r"mvh\.?|m\.v\.h\.?|(?:med )?venlig(?:e)? hilsen(?:er)?|(?:mange |de bedste )?hilsner?|kh\.?|"
    r"tak(?: på forhånd)?|på forhånd tak)\b.*$",
    re.IGNORECASE,
)
# A sentence ends at . ? or ! before a capital letter: "pr. uge" and "Sundhed.dk" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-ZÆØÅ])")
_NOISE = re.compile(r"\S+@\S+|https?://\S+|\S*\d\S*")
_LEADING_GREETING = re.compile(r"^(?:hi|hello|hey|dear(?: \w+)?|hej(?:sa)?|kære(?: \w+)?)\s*[,!.:]\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def _sentences(body: str) -> list[str]:
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    kept = []
    for line in lines:
        if _CLOSING.match(line):
            break  # what follows a sign-off is a name or a signature
        if _GREETING.match(line):
            continue
        for sentence in _SENTENCE_END.split(_LEADING_GREETING.sub("", line)):
            sentence = _SPACES.sub(" ", _NOISE.sub(" ", sentence)).strip()
            # A sentence that was only a number or a greeting ("Ref. 55123", "Hej.") says nothing.
            if len(sentence.split()) > 1 and not _GREETING.match(sentence) and not _CLOSING.match(sentence):
                kept.append(sentence)
    return kept


def question_text(subject: str, body: str) -> str:
    """Subject plus the body's opening sentences, with its first question kept; no numbers or addresses."""
    sentences = _sentences(body)
    chosen: list[str] = []
    for sentence in sentences:
        if chosen and len(" ".join([subject, *chosen, sentence])) > MAX_QUESTION_CHARS:
            break
        chosen.append(sentence)
    first_question = next((s for s in sentences if s.endswith("?")), None)
    if first_question and first_question not in chosen:
        # The question itself matters more than the story before it: it replaces the last sentence taken.
        chosen = [*chosen[:-1], first_question] if len(chosen) > 1 else [first_question]
    # The sentences were cleaned when split; only the subject still carries numbers and addresses.
    text = " ".join([_SPACES.sub(" ", _NOISE.sub(" ", subject)).strip(), *chosen]).strip()
    if len(text) <= MAX_QUESTION_CHARS:
        return text
    cut = text[:MAX_QUESTION_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut
