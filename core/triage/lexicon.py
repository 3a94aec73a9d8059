"""Lexicon matching: inflections, one-typo tolerance, æøå folding and negation cues with a window."""

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from core.triage.normalise import Folded, fold, fold_with_offsets, mark_gaps, term_spellings
from core.triage.typos import deletes, within_one_edit  # noqa: F401 (within_one_edit is part of this API)
from policy_rules.lexicon_schema import Lexicon

# Inflection endings per language; a term matches a word that is the term plus one of these.
SUFFIXES = {
    "en": frozenset({"s", "es", "ed", "d", "ing", "'s", "ly"}),
    "da": frozenset({"e", "en", "er", "erne", "et", "ene", "ets", "ens", "es", "s", "r", "re", "rne", "ne", "n",
                     "t", "te", "de", "ede", "ende", "ning"}),
    "any": frozenset({"s", "'s", "en", "er", "et", "ens", "ets", "erne"}),
}
MAX_SUFFIX = 4
FUZZY_MIN_TOKEN = 6
COMPOUND_MIN_PREFIX = 3
_MARK = re.compile(r"[.!?;,:\n\r\u2022|()]")  # punctuation between two words of a phrase
# Abbreviations whose full stop ends no sentence when a word follows on the same line ('1.249 kr. i e-Boks',
# 'ca. 3 uger', 'Dr. Holm'): with it, a near-window rule would lose a price and its channel to two sentences.
# Danish two-part ones end in a one-letter or short part ('bl.a. Orfiril og Furix', 'f.eks. Panodil', 'm.fl.').
_ABBREVIATIONS = frozenset({"kr", "ca", "stk", "nr", "dr", "mr", "mrs", "ms", "approx", "tlf", "evt", "inkl", "ekskl",
                            "bl", "mht", "vedr", "pga", "jf", "vs", "prof", "a", "f", "eks", "fl", "ang", "iflg", "ift",
                            "ifm"})
_ABBREVIATION_STOP = re.compile(r"\.[ \t]*(?=\w)")  # 'bl.a.' has no space inside
# A number is one word even with a decimal point ('0.5 mg' is no sentence end) and is split from a unit
# typed onto it ('40mcg' is '40' 'mcg'), so dose units and question sentences are still found.
_TOKEN = re.compile(r"(\d+(?:[.,]\d+)*(?=[^\W\d_])|\d+(?:[.,]\d+)+|[^\W_]+(?:'[^\W_]+)*)|([.!?;,\n\r\u2022|])")


class Token(NamedTuple):
    """One word (a tuple, like Match: a message makes hundreds; a frozen dataclass is 3x slower to build)."""
    text: str
    start: int
    end: int
    clause: int    # negation scope: ends at punctuation and at 'but', 'men', 'except' ...
    sentence: int  # phrase scope: ends at punctuation only


@dataclass(frozen=True, slots=True)
class Entry:
    """One term of a lexicon, as folded words ('*' stands for any one word)."""

    lexicon: str
    group: str
    term: str
    words: tuple[str, ...]
    role: str = "term"  # term | exclude | cue:before | cue:after | cue:resolved | cue:pseudo
    # Where an exclusion lets punctuation stand between its words (after word k): only where its term writes
    # it ('fik oplyst, hvilken medicin') or next to a '*'. 'Hævet prisen' is a raised price; 'min ankel er
    # hævet, prisen ...' a swollen ankle.
    gaps: frozenset[int] = frozenset()


class Match(NamedTuple):
    lexicon: str
    group: str
    term: str
    start: int
    end: int
    first: int
    last: int
    clause: int
    negated: bool = False
    fuzzy: bool = False


@dataclass(frozen=True, slots=True)
class Scan:
    """Every lexicon match in one text, with the folded text for offsets back to the original."""

    folded: Folded
    tokens: tuple[Token, ...]
    matches: dict[str, tuple[Match, ...]]
    questions: frozenset[int] = frozenset()  # sentences that end in '?' or open with a question word


_ANY_WORD = frozenset({"*"})


def _place(hit: tuple) -> int:
    return hit[0]


class LexiconSet:
    """All lexicons compiled into one word index, so a text is scanned once for every lexicon."""

    def __init__(self, lexicons: list[Lexicon]) -> None:
        self.lexicons = {lex.id: lex for lex in lexicons}
        self.negation = next((lex for lex in lexicons if lex.kind == "negation"), None)
        self.starters = next((lex.id for lex in lexicons if lex.kind == "question_starters"), None)
        self._suffixes: dict[str, set[str]] = defaultdict(set)
        self._fuzzy_words: set[str] = set()
        self._compounds: dict[str, set[str]] = defaultdict(set)
        self._by_first: dict[str, list[Entry]] = defaultdict(list)
        self._no_fuzzy: set[str] = set()
        self._terminators: set[str] = set()
        self._lookups: dict[str, tuple] = {}
        self._negatable = frozenset(name for name, lex in self.lexicons.items() if lex.negatable)
        for lex in lexicons:
            self._add_lexicon(lex)
        self._fuzzy_index: dict[str, list[str]] = defaultdict(list)
        for word in self._fuzzy_words:
            for key in deletes(word) | {word}:
                self._fuzzy_index[key].append(word)
        heads = sorted(self._compounds, key=len, reverse=True)
        # A compound head needs a real word in front ('april' is no '-pril' medicine).
        self._compound_re = re.compile(
            f"[^\\W_]{{{COMPOUND_MIN_PREFIX},}}?({'|'.join(map(re.escape, heads))})([a-z']{{0,4}})") if heads else None

    def _add_lexicon(self, lex: Lexicon) -> None:
        for group in lex.groups:
            role = "term"
            if lex.kind == "negation":
                if group.name == "terminators":
                    self._terminators.update(fold(t) for t in group.terms)
                    continue
                role = f"cue:{group.name}"
            fuzzy = lex.fuzzy if group.fuzzy is None else group.fuzzy
            min_length = lex.fuzzy_min_length if fuzzy and role == "term" else 0
            for term in group.terms:
                self._add_term(lex.id, group.name, term, group.lang, min_length, role)
        for phrase in lex.exclude:
            self._add_term(lex.id, "exclude", phrase, "any", 0, "exclude")
        self._no_fuzzy.update(fold(w) for w in lex.look_alikes)

    def _add_term(self, lexicon: str, group: str, term: str, lang: str, fuzzy_min: int, role: str) -> None:
        """Index a term; fuzzy_min is the shortest word a typo is forgiven in (0: never)."""
        for words in term_spellings(term):
            for index, word in enumerate(words):
                if word == "*":
                    continue
                if index == 0 and word.startswith("*"):
                    self._compounds[word[1:]].update(SUFFIXES[lang])
                    continue
                self._suffixes[word].update(SUFFIXES[lang])
                if fuzzy_min and len(word) >= fuzzy_min and word.isalpha():
                    self._fuzzy_words.add(word)
            first = words[0][1:] if words[0].startswith("*") else words[0]
            gaps = mark_gaps(term, len(words)) if role == "exclude" else frozenset()  # only exclusions read them
            self._by_first[first].append(Entry(lexicon, group, term, words, role, gaps))

    def analyse(self, token: str) -> tuple[tuple[str, bool], ...]:
        """The index words a token can stand for, each with whether a typo was forgiven (_lookup caches it)."""
        found: dict[str, bool] = {}
        suffixes = self._suffixes
        if token in suffixes:
            found[token] = False
        stems = [(token, "")]
        for k in range(1, min(MAX_SUFFIX, len(token) - 3) + 1):
            stem, ending = token[:-k], token[-k:]
            stems.append((stem, ending))
            if ending in suffixes.get(stem, ()):
                found[stem] = False
        for stem, ending, base in ((token[:-3] + "y", "s", "ies"), (token[:-3] + "y", "d", "ied"),
                                   (token[:-3] + "e", "ing", "ing")):
            if token.endswith(base) and len(stem) > 3 and ending in suffixes.get(stem, ()):
                found[stem] = False
        if self._compound_re is not None:
            match = self._compound_re.fullmatch(token)
            if match and (not match.group(2) or match.group(2) in self._compounds[match.group(1)]):
                found[match.group(1)] = False
        if not found and len(token) >= FUZZY_MIN_TOKEN and token not in self._no_fuzzy and token.isalpha():
            for stem, ending in stems:
                if len(stem) < FUZZY_MIN_TOKEN:
                    break
                for key in deletes(stem) | {stem}:
                    for word in self._fuzzy_index.get(key, ()):
                        if word[0] == stem[0] and within_one_edit(stem, word) and (
                                not ending or ending in suffixes[word]):
                            found[word] = True
        return tuple(found.items())

    def tokenise(self, text: str) -> tuple[tuple[Token, ...], set[int]]:
        """Words with folded offsets, clause and sentence numbers; and the sentences ending in '?'."""
        tokens: list[Token] = []
        asked: set[int] = set()
        clause = sentence = 0
        terminators = self._terminators
        for m in _TOKEN.finditer(text):
            word, mark = m.groups()
            if word is None:
                if mark == "?":
                    asked.add(sentence)
                if (mark == "." and tokens and tokens[-1].end == m.start() and tokens[-1].text in _ABBREVIATIONS
                        and _ABBREVIATION_STOP.match(text, m.start())):
                    continue
                clause += 1
                if mark != ",":  # a comma ends a clause (negation scope), not a sentence
                    sentence += 1
                continue
            if word in terminators:
                clause += 1
            start, end = m.span()
            tokens.append(Token(word, start, end, clause, sentence))
        return tuple(tokens), asked

    def _lookup(self, token: str) -> tuple[frozenset[str], tuple, dict[str, list]]:
        """What a token can start (cached per token): the index words it can stand for, its one-word terms, and
        its phrases by their second word ('i' begins hundreds of phrases; only those whose second word follows
        are looked at). Each entry keeps its place in index order, so matches come out in the same order."""
        cached = self._lookups.get(token)
        if cached is not None:
            return cached
        forms = self.analyse(token)
        candidates = [(entry, fuzzy) for word, fuzzy in forms for entry in self._by_first.get(word, ())]
        singles = tuple((k, entry, fuzzy) for k, (entry, fuzzy) in enumerate(candidates) if len(entry.words) == 1)
        phrases: dict[str, list] = defaultdict(list)
        for k, (entry, fuzzy) in enumerate(candidates):
            if len(entry.words) > 1:
                phrases[entry.words[1]].append((k, entry, fuzzy))
        found = (frozenset(w for w, _ in forms), singles, dict(phrases))
        if len(self._lookups) < 200_000:
            self._lookups[token] = found
        return found

    def scan(self, text: str) -> Scan:
        """Match every lexicon against one text."""
        folded = fold_with_offsets(text)
        tokens, asked = self.tokenise(folded.text)
        if not tokens:
            return Scan(folded, tokens, {})
        looks = [self._lookup(t.text) for t in tokens]
        words_at = [look[0] for look in looks]
        words_at.append(frozenset())
        raw: list[tuple[Entry, int, int, bool]] = []
        for i, (_, singles, phrases) in enumerate(looks):
            if not phrases:
                raw.extend((entry, i, i, fuzzy) for _, entry, fuzzy in singles)
                continue
            hits = [(k, entry, i, fuzzy) for k, entry, fuzzy in singles]
            for second in words_at[i + 1] | _ANY_WORD:
                for k, entry, fuzzy in phrases.get(second, ()):
                    if (last := self._phrase_end(entry, i, tokens, words_at)) is not None:
                        hits.append((k, entry, last, fuzzy))
            hits.sort(key=_place)
            raw.extend((entry, i, last, fuzzy) for _, entry, last, fuzzy in hits)
        matches = self._resolve(raw, tokens, folded.text)
        if self.starters is not None:
            asked |= {tokens[m.first].sentence for m in matches.get(self.starters, ())
                      if m.group == "anywhere" or m.first == 0
                      or tokens[m.first - 1].sentence != tokens[m.first].sentence}
        return Scan(folded, tokens, matches, frozenset(asked))

    @staticmethod
    def _phrase_end(entry: Entry, i: int, tokens: tuple[Token, ...], words_at: list[frozenset[str]]) -> int | None:
        words = entry.words
        last = i + len(words) - 1
        if last >= len(tokens) or tokens[last].sentence != tokens[i].sentence:
            return None
        for k in range(1, len(words)):
            if words[k] != "*" and words[k] not in words_at[i + k]:
                return None
        return last

    def _resolve(self, raw: list, tokens: tuple[Token, ...], text: str) -> dict[str, tuple[Match, ...]]:
        """Drop excluded and pseudo-negated matches, then mark negated ones."""
        excluded: dict[str, list[tuple[int, int]]] = defaultdict(list)
        pseudo: list[tuple[int, int]] = []
        cues: list[tuple[str, int, int]] = []
        terms: list[tuple[Entry, int, int, bool]] = []
        for entry, first, last, fuzzy in raw:
            if entry.role == "term":
                terms.append((entry, first, last, fuzzy))
            elif entry.role == "exclude":
                if not any(k not in entry.gaps and _MARK.search(text, tokens[first + k].end, tokens[first + k + 1].start)
                           for k in range(last - first)):
                    excluded[entry.lexicon].append((first, last))
            elif entry.role == "cue:pseudo":
                pseudo.append((first, last))
            else:
                cues.append((entry.role, first, last))
        # A cue inside a pseudo-negation ('not sure') or a negatable term ('not feeling well') is no cue.
        negatable = self._negatable
        by_clause: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
        if cues:
            covered = pseudo + [(f, l) for e, f, l, _ in terms if e.lexicon in negatable]
            for cue in cues:
                if not any(f <= cue[1] and cue[2] <= l for f, l in covered):
                    by_clause[tokens[cue[1]].clause].append(cue)
        before = self.negation.window_before if self.negation else 0
        after = self.negation.window_after if self.negation else 0
        resolved = self.negation.window_resolved if self.negation else 0
        result: dict[str, list[Match]] = defaultdict(list)
        for entry, first, last, fuzzy in terms:
            if excluded and any(f <= last and first <= l for f, l in excluded.get(entry.lexicon, ())):
                continue
            clause = tokens[first].clause
            # Only cues of the term's own clause can negate it.
            negated = entry.lexicon in negatable and any(
                (role == "cue:before" and cl < first and first - cl <= before)
                or (role == "cue:after" and cf > last and cf - last <= after)
                or (role == "cue:resolved" and cf > last and cf - last <= resolved)
                for role, cf, cl in by_clause.get(clause, ()))
            result[entry.lexicon].append(Match(
                entry.lexicon, entry.group, entry.term, tokens[first].start, tokens[last].end,
                first, last, clause, negated, fuzzy))
        return {name: tuple(matches) for name, matches in result.items()}
