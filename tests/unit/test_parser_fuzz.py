"""core.parsing under hypothesis: arbitrary and mutated bytes never raise, always get a key, parse the same twice."""

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.parsing import ParseOutcome, parse_message

SEEDS = [
    b"From: Anna Jensen <anna@example.dk>\r\nTo: apotek@soendergade-apotek.example\r\nSubject: Recept\r\n"
    b"Date: Mon, 25 Nov 2026 09:15:00 +0100\r\nMessage-ID: <m1@example.dk>\r\n\r\n"
    b"Kan I forny min recept?\r\n\r\nMvh\r\nAnna\r\n",
    b"From: =?utf-8?q?S=C3=B8ren?= <soren@example.dk>\r\nSubject: =?iso-8859-1?b?5mJsZXI=?=\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
    b"--B\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
    b"--A\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"K=E6re apotek=\r\n, tak.\r\n--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>K&aelig;re <span style=display:none>x</span>apotek</p>\r\n--A--\r\n"
    b"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
    b"filename*=utf-8''recept%C3%A6.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: lars@example.dk\r\nSubject: Fwd\r\n\r\n"
    b"On Mon, 1 Jan 2024, A <a@b.dk> wrote:\r\n> hi\r\n--B--\r\n",
    b"From MAILER-DAEMON Mon Nov 25 09:00:00 2026\r\nFrom: MAILER-DAEMON\r\nSubject: Undeliverable: x\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n--R\r\n\r\nfailed\r\n"
    b"--R\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.0.0\r\n--R--\r\n",
]
TOKENS = [
    b"\r\n", b"\n\n", b"--", b"--B", b"=?", b"?=", b"=?utf-8?b?", b":", b";", b"<", b">", b"\"", b"(", b"\\", b"\x00",
    b"\xff", b"\xc3", b"boundary=", b"charset=", b"Content-Type: multipart/mixed; boundary=B\r\n", b"> ",
]


def check(raw: bytes) -> ParseOutcome:
    outcome = parse_message(raw)
    assert outcome.message_key
    assert outcome.content_sha256 == hashlib.sha256(raw).hexdigest()
    assert (outcome.message is None) == (outcome.reason is not None)
    if outcome.message is not None:
        assert outcome.message.message_key == outcome.message_key
        outcome.message.model_dump_json()  # no lone surrogates or other unserialisable text slipped through
    return outcome


def assert_deterministic(raw: bytes) -> None:
    first, second = check(raw), parse_message(raw)
    assert first.message_key == second.message_key and first.reason == second.reason
    assert (first.message and first.message.model_dump()) == (second.message and second.message.model_dump())


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 12))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = data[draw(st.integers(0, len(data))):][: draw(st.integers(1, 120))]
    return bytes(data)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_deterministic(raw)


@FUZZ
@given(mutated())
def test_mutated_messages_never_raise(raw: bytes) -> None:
    assert_deterministic(raw)


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(["From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "Content-Type",
                                   "Content-Transfer-Encoding", "Reply-To", "X-Y"]), st.text(max_size=60)),
        max_size=8,
    ),
    st.text(max_size=400),
)
def test_headers_of_arbitrary_text_never_raise(headers: list[tuple[str, str]], body: str) -> None:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    assert_deterministic((lines + "\r\n" + body).encode("utf-8", "surrogatepass"))


def test_seeds_parse_into_messages() -> None:
    for seed in SEEDS:
        assert check(seed).message is not None
