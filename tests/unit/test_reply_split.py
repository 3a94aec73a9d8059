"""core.reply_split: English and Danish replies, forwards and signatures, as mail clients write them."""

import pytest

from core.reply_split import split_reply

PHARMACY = "Søndergade Pharmacy <apotek@soendergade-apotek.example>"
APOTEK = "Søndergade Apotek <apotek@soendergade-apotek.example>"
REPLY_HEADERS = [
    # (new text, attribution line or separator block, quoted text)
    ("Yes, Friday is fine.", f"On Mon, Nov 24, 2026 at 10:15 AM, {PHARMACY} wrote:", "> Your order is ready."),
    ("Yes, Friday is fine.", f"On 24 Nov 2026, at 10:15, {PHARMACY} wrote:", "> Your order is ready."),
    ("Ja tak.", f"Den man. 24. nov. 2026 kl. 10.15 skrev {APOTEK}:", "> Din ordre er klar."),
    ("Ja tak.", f"Den 24. november 2026 skrev {APOTEK}:", "> Din ordre er klar."),
    ("Ja tak.", "Den 24/11/2026 kl. 10:15 skrev apotek@soendergade-apotek.example:", "> Din ordre er klar."),
    ("Ja tak.", "Søndergade Apotek skrev den 24-11-2026 10:15:", "> Din ordre er klar."),
    (
        "Thanks.",
        "-----Original Message-----\nFrom: Pharmacy\nSent: Monday, November 24, 2026 10:15\nTo: Anna\nSubject: Order",
        "Your order is ready.",
    ),
    (
        "Tak.",
        "-----Oprindelig meddelelse-----\nFra: Apotek\nSendt: 24. november 2026 10:15\nTil: Anna\nEmne: Ordre",
        "Din ordre er klar.",
    ),
    (
        "Thanks.",
        f"________________________________\nFrom: {PHARMACY}\nSent: Monday, November 24, 2026 10:15\n"
        "To: Anna <anna@example.dk>\nSubject: Your order",
        "Your order is ready.",
    ),
    (
        "Tak.",
        f"Fra: {APOTEK}\nSendt: 24. november 2026 10:15\nTil: Anna <anna@example.dk>\nEmne: Din ordre",
        "Din ordre er klar.",
    ),
    (
        "Tak.",
        "Fra: Søndergade Apotek\nDato: mandag den 24. november 2026 kl. 10.15\nTil: Anna\nEmne: Din ordre",
        "Din ordre er klar.",
    ),
]


@pytest.mark.parametrize(("new", "header", "old"), REPLY_HEADERS)
def test_reply_headers_start_the_quoted_text(new: str, header: str, old: str) -> None:
    split = split_reply(f"{new}\n\n{header}\n\n{old}\n")
    assert split.body == new
    assert split.quoted == f"{header}\n\n{old}"
    assert not split.forwarded


def test_a_wrapped_attribution_line_is_recognised() -> None:
    text = "Hi there\n\nOn Mon, 24 Nov 2026 at 18:26, A Very Long Name <a.very.long.address@example.com>\nwrote:\n> x\n"
    assert split_reply(text).body == "Hi there"


def test_unknown_language_attribution_above_a_quote_block_is_quoted_too() -> None:
    text = 'Hello\n02.04.2012 14:20 пользователь "bob@example.com" <\nbob@example.com> написал:\n\n> Hi\n'
    split = split_reply(text)
    assert split.body == "Hello" and split.quoted.startswith("02.04.2012")


def test_a_sentence_ending_in_a_colon_is_not_an_attribution() -> None:
    split = split_reply("Se nedenfor:\n\n> citeret tekst\n")
    assert (split.body, split.quoted) == ("Se nedenfor:", "> citeret tekst")


def test_inline_answers_between_quotes_stay_new_text() -> None:
    split = split_reply("> Hvilken styrke?\n500 mg\n> Hvor mange?\nTo pakker\n")
    assert split.body == "500 mg\nTo pakker"
    assert split.quoted == "> Hvilken styrke?\n> Hvor mange?"


def test_bottom_posted_answer_below_the_quote_is_new_text() -> None:
    split = split_reply("On 04/02/2012 06:26 PM, Pharmacy wrote:\n> Is Friday ok?\nFriday is fine.\n\n-- \nAnna\n")
    assert split.body == "Friday is fine."
    assert split.quoted == "On 04/02/2012 06:26 PM, Pharmacy wrote:\n> Is Friday ok?"
    assert split.signature == "--\nAnna"


def test_a_reply_without_new_text_has_an_empty_body() -> None:
    split = split_reply("On Mon, 24 Nov 2026 at 10:15, Pharmacy <a@b.dk> wrote:\n> Is Friday ok?\n")
    assert split.body == "" and split.quoted.endswith("> Is Friday ok?") and not split.forwarded


def test_from_in_a_sentence_is_not_an_outlook_block() -> None:
    text = "From: my doctor at the clinic\nShe said I need a new prescription.\n"
    assert split_reply(text).body == "From: my doctor at the clinic\nShe said I need a new prescription."


FORWARD_MARKERS = [
    "---------- Forwarded message ---------",
    "-------- Forwarded Message --------",
    "---------- Videresendt meddelelse ----------",
    "Begin forwarded message:",
    "Start på videresendt besked:",
]


@pytest.mark.parametrize("marker", FORWARD_MARKERS)
def test_forward_without_new_text_makes_the_forwarded_message_the_body(marker: str) -> None:
    forwarded = "From: Lars <lars@example.dk>\nDate: 24. nov. 2026\nSubject: Recept\n\nKan I forny min Pamol?"
    split = split_reply(f"\n{marker}\n{forwarded}\n")
    assert split.body == forwarded and split.quoted == "" and split.forwarded


@pytest.mark.parametrize("marker", FORWARD_MARKERS)
def test_forward_with_new_text_quotes_the_forwarded_message(marker: str) -> None:
    split = split_reply(f"Kan I hjælpe min far?\n\n{marker}\nFrom: Lars\n\nKan I forny min Pamol?\n")
    assert split.body == "Kan I hjælpe min far?"
    assert split.quoted == f"{marker}\nFrom: Lars\n\nKan I forny min Pamol?"
    assert not split.forwarded


def test_outlook_forward_with_only_a_signature_above_is_the_request() -> None:
    text = (
        "Sendt fra min iPhone\n\n________________________________\nFra: Lars <lars@example.dk>\n"
        "Sendt: 24. november 2026 10:15\nTil: Anna\nEmne: Recept\n\nKan I forny min Pamol?\n"
    )
    split = split_reply(text, forward_hint=True)
    assert split.forwarded and split.body.startswith("Fra: Lars") and split.body.endswith("Kan I forny min Pamol?")
    assert split.signature == "Sendt fra min iPhone"
    reply = split_reply(text, forward_hint=False)
    assert reply.body == "" and reply.quoted.startswith("____")


SIGNATURES = [
    ("Please refill my inhaler.", "-- \nAnna Jensen\nSøndergade 1"),
    ("Please refill my inhaler.", "Sent from my iPhone"),
    ("Kan I forny min recept?", "Sendt fra min iPhone"),
    ("Kan I forny min recept?", "Sendt fra Outlook til Android"),
    ("Kan I forny min recept?", "Mvh\nAnna Jensen"),
    ("Kan I forny min recept?", "Mvh Anna"),
    ("Kan I forny min recept?", "Med venlig hilsen\nAnna Jensen\nSøndergade 1\n8000 Aarhus C\nTlf. 12 34 56 78"),
    ("Kan I forny min recept?", "Venlig hilsen,\nAnna"),
    ("Please refill my inhaler.", "Best regards,\nJohn Smith"),
    ("Please refill my inhaler.", "Kind regards\nJohn Smith\nCare home manager"),
]


@pytest.mark.parametrize(("body", "signature"), SIGNATURES)
def test_signatures_are_cut(body: str, signature: str) -> None:
    split = split_reply(f"{body}\n\n{signature}\n")
    assert split.body == body
    assert split.signature == signature.replace("-- \n", "--\n")


@pytest.mark.parametrize(
    "text",
    [
        "Mvh\nAnna\nP.S. Husk også min insulin, den er næsten brugt op.",
        "Med venlig hilsen\n1\n2\n3\n4\n5",
        "Thank you\n\nI also need my insulin.",
        "Best regards to your team, but I still have not received the package that was promised last week.",
        "Kind regards\nThis line is far too long to be part of a signature block, it is clearly part of the request.",
    ],
)
def test_text_that_only_looks_like_a_sign_off_stays_in_the_body(text: str) -> None:
    split = split_reply(text)
    assert split.body == text and split.signature == ""


def test_signature_above_a_quoted_reply_is_cut_and_the_quote_kept() -> None:
    text = "Ja tak.\n\nMvh\nAnna\n\nDen 24. nov. 2026 kl. 10.15 skrev Apotek <a@b.dk>:\n> Er fredag ok?\n"
    split = split_reply(text)
    assert (split.body, split.signature) == ("Ja tak.", "Mvh\nAnna")
    assert split.quoted.endswith("> Er fredag ok?")


def test_crlf_and_trailing_spaces_are_normalised() -> None:
    split = split_reply("Hej   \r\n\r\n\r\n\r\nKan I ringe?\r\n")
    assert split.body == "Hej\n\nKan I ringe?"
