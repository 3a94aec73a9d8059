"""mailboxes.yaml: valid files load; a bad one names the file, the line and the field."""

import pytest

from connectors.mailbox_config import ImapMailboxConfig, load_mailboxes
from policy_rules.yaml_errors import RuleFileError

GOOD = """\
pharmacies:
  - id: soendergade
    name: Søndergade Apotek
    mailboxes:
      - kind: local
        name: demo
        path: /tmp/mail
      - kind: imap
        name: apotek-inbox
        host: imap.example.dk
        username: apotek@example.dk
        password_env: RXINBOX_IMAP_PASSWORD
  - id: loeve
    name: Løve Apotek
    sweep_every_seconds: 300
    mailboxes:
      - kind: graph
        name: loeve-m365
        tenant_id: 00000000-0000-0000-0000-000000000000
        client_id: 11111111-1111-1111-1111-111111111111
        client_secret_env: RXINBOX_GRAPH_SECRET
        mailbox: apotek@loeve.example
"""


def write(tmp_path, text):
    path = tmp_path / "mailboxes.yaml"
    path.write_text(text)
    return path


def test_good_file_loads_and_finds_mailboxes(tmp_path):
    config = load_mailboxes(write(tmp_path, GOOD))
    pharmacy, mailbox = config.find("apotek-inbox")
    assert pharmacy.id == "soendergade" and isinstance(mailbox, ImapMailboxConfig)
    assert mailbox.security == "tls" and not mailbox.allow_plaintext_auth
    with pytest.raises(KeyError):
        config.find("nope")


@pytest.mark.parametrize(
    "old, new, line, field",
    [
        ("        host: imap.example.dk\n", "        host: imap.example.dk\n        colour: blue\n", 11, "mailboxes[1].colour"),
        ("    sweep_every_seconds: 300", "    sweep_every_seconds: 5", 15, "sweep_every_seconds"),
        ("      - kind: graph", "      - kind: pop3", 17, "mailboxes[0]"),
        ("        password_env: RXINBOX_IMAP_PASSWORD\n", "        password_env: X\n        security: plain\n", 8, "mailboxes[1]"),
    ],
    ids=["unknown-field", "too-frequent", "unknown-kind", "plaintext-without-consent"],
)
def test_bad_file_names_line_and_field(tmp_path, old, new, line, field):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RuleFileError) as error:
        load_mailboxes(path)
    assert error.value.line == line
    assert field in error.value.field
    assert str(path) in str(error.value)


def test_duplicate_mailbox_names_are_rejected(tmp_path):
    path = write(tmp_path, GOOD.replace("name: loeve-m365", "name: demo"))
    with pytest.raises(RuleFileError, match="unique"):
        load_mailboxes(path)
