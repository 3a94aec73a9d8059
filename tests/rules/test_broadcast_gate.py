"""The broadcast-mail gate (policy_rules/conditions/broadcast-mail.yaml, a rule's `unless:`) over the real
lexicons: newsletters, digests and campaigns are gated; a sender's own report, a reply or a forward never is."""

import shutil
from functools import lru_cache

import pytest

from core.triage.context import message_context
from core.triage.engine import REQUIRED_LEXICONS
from core.triage.inputs import TriageInput
from core.triage.lexicon import LexiconSet
from core.triage.rules import compile_condition
from policy_rules.loader import LEXICON_DIR, RULES_DIR, load_policy
from policy_rules.rule_schema import RefCondition
from policy_rules.yaml_errors import RuleFileError

# The gate clinical-vocabulary rules share as `unless: {ref: broadcast-mail}`; tested here on its own.
GATE = "broadcast-mail"
BROADCAST = [
    ("NORDIC PHARMACY REVIEW - weekly digest", "Statins and muscle pain: what the new meta-analysis says about "
     "myalgia.\nUnsubscribe | Manage preferences"),
    ("Your customers are asking for magnesium", "Dear pharmacy partner,\nSleepless nights, muscle cramps? Our "
     "magnesium 400 mg is in stock.\nYou are receiving this because you are a registered retailer. Unsubscribe."),
    ("NYHEDSBREV – din antibiotikakur", "Milde bivirkninger som kvalme og diarré er almindelige. Får du udslæt, "
     "så kontakt lægen.\nAfmeld nyhedsbrev"),
    ("Forudbestil influenzavaccinen", "Kære samarbejdspartner\nForudbestillingsrabat. Hyppige bivirkninger: "
     "feber og hovedpine.\nDu modtager denne mail, fordi dit apotek er kunde hos os."),
    # An issue announced, with no footer: the issue words are the markers.
    ("December-nummeret af Apoteksnyt er udkommet", "Årets sidste nummer er klar. Læs blandt andet om:\n\n"
     "- Vinterens forkølelser: hvornår skal man gå til lægen\n- Sådan opbevarer du din medicin\n\nGod læselyst!\n"
     "Redaktionen"),
    ("The December issue is out", "In this issue: statins and muscle pain, and flu jabs for the over-65s. "
     "Happy reading!\nThe editorial team"),
    # A weekly digest: one marker and the digest's masthead line or headline bullets.
    ("Pharma Today weekly", "PHARMA TODAY - week 47\nValproate: new reminder on pregnancy prevention for women "
     "of childbearing potential. Read more on our website."),
    ("Ugens fagnyt", "* Valproat: ny påmindelse om graviditetsforebyggelse\n* Semaglutid: bedre forsyning fra "
     "januar\nLæs mere på vores hjemmeside."),
    # A trade bulletin to every pharmacy: its audience (counter material, CPD points, 'to all pharmacies') are the
    # markers, and a month can close the masthead line.
    ("Apotekernyt December: report side effects campaign", "APOTEKERNYT - December\n\n* Campaign week 3: 'Tell us "
     "about side effects' - posters and counter material for encouraging customers to report suspected side "
     "effects are on their way to all pharmacies.\n* New e-learning: inhaler technique (2 CPD points).\n\n"
     "Danmarks Apotekerforening"),
    ("Apotekernyt december", "APOTEKERNYT - december\n\n* Kampagneuge 3: 'Fortæl os om bivirkninger' - plakater og "
     "skrankemateriale sendes til alle apoteker.\n* Nyt e-læringskursus: inhalationsteknik.\n"),
]
OWN_WORDS = [
    ("Fwd: NORDIC PHARMACY REVIEW - weekly digest", "I take statins and have had muscle pain for a week, is this "
     "me?\n---------- Forwarded message ----------\nStatins and muscle pain. Unsubscribe | Manage preferences"),
    ("Your newsletter", "Your newsletter mentioned statins. My husband has had leg pain since he started "
     "atorvastatin. Unsubscribe me please."),
    ("Nyhedsbrev", "I jeres nyhedsbrev skrev I om svimmelhed. Min mor er blevet svimmel af amlodipin. Afmeld mig."),
    ("SV: Nyhedsbrev", "Hovedpine i tre dage efter vaccinen, er det normalt? Afmeld nyhedsbrev"),
    ("Pharma Today", "Is this relevant for me? I'm pregnant and take valproate.\n\nPHARMA TODAY - week 47\n"
     "* Valproate: new reminder on pregnancy prevention.\nUnsubscribe | Manage preferences"),
    ("Apoteksnyt", "Jeg læste om statiner i det nye nummer. Jeg har fået ondt i benene af min Atorvastatin. "
     "God læselyst til jer selv."),
    ("Apotekernyt december", "APOTEKERNYT - december\n* Kampagneuge 3: plakater og skrankemateriale til alle "
     "apoteker.\n* Nyt e-læringskursus.\nJeg har fået bivirkninger af min nye blodtryksmedicin, hvem skal jeg "
     "kontakte?"),
]
# Layout alone is never a marker: a care home's order list has bullets with colons too.
NOT_BROADCAST = [
    ("Ugebestilling uge 47", "Lindegården - uge 47\n- Bolig 3: Paracetamol 500 mg\n- Bolig 7: Fru Hansen har "
     "fået udslæt efter Amoxicillin, kan I sende en creme\n- Bolig 12: Cetirizin"),
]


@lru_cache(maxsize=1)
def gate():
    policy = load_policy(required_lexicons=REQUIRED_LEXICONS)
    lexicons = LexiconSet(list(policy.lexicons))
    return lexicons, compile_condition(RefCondition(ref=GATE), lexicons, policy.conditions)


def holds(subject: str, body: str) -> bool:
    lexicons, evaluate = gate()
    return evaluate(message_context(lexicons, TriageInput(id="1", sender=None, subject=subject, body=body))) is not None


@pytest.mark.parametrize(("subject", "body"), BROADCAST)
def test_broadcast_mail_is_gated(subject, body):
    assert holds(subject, body)


@pytest.mark.parametrize(("subject", "body"), OWN_WORDS)
def test_the_senders_own_words_reply_or_forward_are_never_gated(subject, body):
    assert not holds(subject, body)


@pytest.mark.parametrize(("subject", "body"), NOT_BROADCAST)
def test_a_list_layout_without_a_list_mail_marker_is_not_gated(subject, body):
    assert not holds(subject, body)


def test_an_unknown_lexicon_in_a_gate_fails_with_its_line(tmp_path):
    rules = tmp_path / "escalation"
    shutil.copytree(RULES_DIR, rules)
    path = rules / "zz-test.yaml"
    path.write_text("id: zz-test\ntitle: A test rule\ndescription: Fires on symptoms, for this test.\n"
                    "reason: new_symptoms\nwhen:\n  lexicon: symptoms\nunless:\n  lexicon: bulk_mailz\n"
                    "metadata:\n  why: Only exists inside this test.\n  source: [tests]\n  added: 2025-11-26\n",
                    encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_policy(rules, LEXICON_DIR)
    assert caught.value.line == 8 and "bulk_mailz" in str(caught.value)
