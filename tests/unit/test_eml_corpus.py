"""core.parsing over the real-world corpus in ../shared/corpora/eml (beside the checkout; skipped when absent).

Every file is either parsed into a message or quarantined with a reason: nothing crashes, nothing is lost.
"""

from pathlib import Path

import pytest

from core.parsing import parse_many

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "eml"
MAIL_SUFFIXES = {".eml", ".msg"}


@pytest.fixture(scope="module")
def corpus() -> dict[str, bytes]:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS} not found: ../shared is absent beside this checkout")
    return {path.name: path.read_bytes() for path in sorted(CORPUS.iterdir()) if path.suffix in MAIL_SUFFIXES}


def test_every_file_is_parsed_or_quarantined_and_nothing_is_printed(corpus: dict[str, bytes], capsys) -> None:
    outcomes = dict(zip(corpus, parse_many(list(corpus.values())), strict=True))
    processed = [name for name, outcome in outcomes.items() if outcome.message is not None]
    quarantined = [name for name, outcome in outcomes.items() if outcome.message is None]
    assert len(corpus) == 185 and sum(name.endswith(".eml") for name in corpus) == 184
    assert len(processed) + len(quarantined) == len(corpus)
    assert all(outcomes[name].reason for name in quarantined)
    assert all(outcome.message_key for outcome in outcomes.values())
    assert not [name for name in quarantined if outcomes[name].reason.startswith("parser error")]
    assert len(processed) >= 175  # only empty, header-less or sender-and-text-less files may be quarantined
    assert capsys.readouterr() == ("", "")


def test_the_outlook_msg_file_is_quarantined_as_such(corpus: dict[str, bytes]) -> None:
    (msg,) = [name for name in corpus if name.endswith(".msg")]
    (outcome,) = parse_many([corpus[msg]])
    assert outcome.message is None
    assert outcome.reason == "Outlook .msg (OLE compound file), not an RFC 822 message"


def test_parsing_the_corpus_twice_gives_the_same_keys(corpus: dict[str, bytes]) -> None:
    first = parse_many(list(corpus.values()))
    second = parse_many(list(corpus.values()))
    assert [o.message_key for o in first] == [o.message_key for o in second]
    # Files sharing a key are copies of one mail (CRLF and LF versions, re-sent fixtures), never different mails.
    seen: dict[str, tuple] = {}
    for outcome in first:
        if outcome.message is not None:
            m = outcome.message
            same = seen.setdefault(outcome.message_key, (m.sender, m.subject, m.body_text, m.quoted_text))
            assert same == (m.sender, m.subject, m.body_text, m.quoted_text)
