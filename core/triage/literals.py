"""Required literals of a regular expression: strings of which every match holds at least one.

A pattern condition runs its regex over every message, yet most messages contain none of the words the regex is
built from. A substring test for those words (str.__contains__ runs in C and skips ahead) is far cheaper than
the regex engine trying every position, so a regex only runs on texts that hold one of its literals. The
analysis is conservative: anything it cannot prove (case-insensitive parts, back-references, an alternative
with no literal) gives no literals, and that regex always runs.
"""

import re
from re import _constants as sre_c  # the parse tree re compiles from: the only exact account of a pattern
from re import _parser as sre_parse

_MAX_SET = 64       # most strings one literal set may hold (a product of alternations grows fast)
_MAX_CHARS = 8      # a character class of at most this many characters counts as its characters
_MAX_REPEAT = 2     # x{0,2} and x? still give a finite set of strings
MAX_LITERALS = 24  # more substring searches than this cost about what the regex does
MIN_PREFIX = 3     # shorter beginnings occur in nearly every text
_ZERO_WIDTH = (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT)


class _Unknown(Exception):
    """The pattern uses something the analysis does not model (the regex then always runs)."""


def _product(left: set[str], right: set[str]) -> set[str] | None:
    if len(left) * len(right) > _MAX_SET:
        return None
    return {a + b for a in left for b in right}


def _class_chars(items: list) -> set[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        if op is sre_c.LITERAL:
            chars.add(chr(arg))
        elif op is sre_c.RANGE and arg[1] - arg[0] < _MAX_CHARS:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        else:
            return None  # NEGATE, CATEGORY (\w, \s) or a wide range
    return chars if len(chars) <= _MAX_CHARS else None


def _exact(seq) -> set[str] | None:
    """Every string this sequence can match (zero-width parts match ''), or None when that set is not small."""
    result = {""}
    for op, arg in seq:
        if op in _ZERO_WIDTH:
            continue
        if op is sre_c.LITERAL:
            part = {chr(arg)}
        elif op is sre_c.IN:
            part = _class_chars(arg)
        elif op is sre_c.SUBPATTERN:
            _check_flags(arg[1])
            part = _exact(arg[3])
        elif op is sre_c.BRANCH:
            alternatives = [_exact(branch) for branch in arg[1]]
            part = None if any(a is None for a in alternatives) else set().union(*alternatives)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT) and arg[1] <= _MAX_REPEAT:
            body = _exact(arg[2])
            part = None
            if body is not None:
                part, power = ({""} if arg[0] == 0 else set()), {""}
                for count in range(1, arg[1] + 1):
                    power = _product(power, body)
                    if power is None:
                        return None
                    if count >= arg[0]:
                        part |= power
        else:
            return None
        if part is None:
            return None
        result = _product(result, part)
        if result is None:
            return None
    return result


def _check_flags(add_flags: int) -> None:
    if add_flags & (re.IGNORECASE | re.LOCALE):
        raise _Unknown


def _better(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    """The cheaper of two literal sets: shortest string up to three characters (shorter ones occur everywhere),
    then fewer strings (each is one search of the text)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if (min(min(map(len, a)), 3), -len(a)) >= (min(min(map(len, b)), 3), -len(b)) else b


def _required(seq) -> set[str] | None:
    """Non-empty strings of which any text this sequence matches in holds one, or None."""
    best: set[str] | None = None
    run: set[str] = {""}
    for op, arg in seq:
        if op is sre_c.GROUPREF or op is sre_c.GROUPREF_EXISTS:
            raise _Unknown
        if op is sre_c.SUBPATTERN:
            _check_flags(arg[1])
        exact = _exact([(op, arg)])
        if exact is not None:
            # Contiguous parts of a match are contiguous in the text: their product is a literal set too.
            joined = _product(run, exact)
            if joined is None:
                best = _better(best, run if "" not in run else None)
                joined = exact
            run = joined
            continue
        best = _better(best, run if "" not in run else None)
        run = {""}
        inner = None
        if op is sre_c.SUBPATTERN or op is sre_c.ATOMIC_GROUP:
            inner = _required(arg[3] if op is sre_c.SUBPATTERN else arg)
        elif op is sre_c.BRANCH:
            alternatives = [_required(branch) for branch in arg[1]]
            inner = None if any(a is None for a in alternatives) else set().union(*alternatives)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT) and arg[0] >= 1:
            inner = _required(arg[2])
        best = _better(best, inner)
    return _better(best, run if "" not in run else None)


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings of which every match of `pattern` contains one (longest first), or None when unknown."""
    try:
        parsed = sre_parse.parse(pattern)
        if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
            return None
        found = _required(parsed.data)
    except (_Unknown, re.error, RecursionError):
        return None
    if not found:
        return None
    found = _minimal(found)
    # Too many to test one by one: their beginnings are required literals too, and far fewer.
    length = max(map(len, found))
    while len(found) > MAX_LITERALS and length > MIN_PREFIX:
        length -= 1
        found = _minimal({s[:length] for s in found})
    return tuple(sorted(found, key=lambda s: (-len(s), s))) if len(found) <= MAX_LITERALS else None


def _minimal(found: set[str]) -> set[str]:
    """Without strings that hold another one of the set (a text with the longer holds the shorter)."""
    kept: list[str] = []
    for literal in sorted(found, key=len):
        if not any(k in literal for k in kept):
            kept.append(literal)
    return set(kept)
