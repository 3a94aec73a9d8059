"""One-typo tolerance for lexicon words: edit distance one, and the deletion keys of the typo index."""


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance ≤ 1 (substitution, insertion, deletion or adjacent swap)."""
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) <= 1:
            return True
        i, j = diff[0], diff[-1]
        return len(diff) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def deletes(word: str) -> set[str]:
    """The word with one letter left out, every way (a typo and its word share one of these, or the word)."""
    return {word[:i] + word[i + 1:] for i in range(len(word))}
