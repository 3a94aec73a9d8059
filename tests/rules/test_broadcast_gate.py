"""The broadcast-mail gate (policy_rules/conditions/broadcast-mail.yaml, a rule's `unless:`) over the real
lexicons: newsletters, digests and campaigns are gated; a sender's own report, a report about a person they look
after, a question to the pharmacy, a reply or a forward never is, and weak markers alone never gate."""

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
     "januar\nLæs mere på vores hjemmeside.\nAfmeld nyhedsbrevet"),
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
    # A care home's letter to families (its masthead is a real home's), a resident's room by number, and a
    # municipality's observation of patients under a trade audience.
    ("", "Solgården - December\nNyhedsbrev til pårørende\n\nStue 4 har haft kvalme og opkast siden den nye "
     "antibiotika, vi venter på lægen."),
    ("", "Rosewood House - December\nNewsletter for families\n\nRoom 4 has had vomiting and confusion since the new "
     "antibiotics started."),
    ("", "Solgården - December\nNyhedsbrev til pårørende\n\nFlere har haft kvalme og opkast siden den nye antibiotika."),
    ("", "Til alle apoteker i kommunen - kampagneuge 3\nVi ser mange borgere med svimmelhed og fald efter opstart af "
     "Amlodipin.\nSkrankemateriale følger."),
]
# Layout alone is never a marker: a care home's order list has bullets with colons too. Weak markers ('read
# more', 'læs mere', 'kort nyt', 'this issue', 'also this week') are never enough, alone or together, even
# with a digest's layout: people write them too. (A footerless digest of headlines is the false escalation
# this costs.)
NOT_BROADCAST = [
    ("Ugebestilling uge 47", "Lindegården - uge 47\n- Bolig 3: Paracetamol 500 mg\n- Bolig 7: Fru Hansen har "
     "fået udslæt efter Amoxicillin, kan I sende en creme\n- Bolig 12: Cetirizin"),
    ("Ugens fagnyt", "* Valproat: ny påmindelse om graviditetsforebyggelse\n* Semaglutid: bedre forsyning fra "
     "januar\nLæs mere på vores hjemmeside."),
    ("", "Pregnant, 8 weeks, still on Depakine. Read more below:\n- Week 6: positive test\n- Week 8: scan booked\n"
     "What now?"),
    ("", "About this issue with the Lamictal rash: it is out now all over chest and face. What to do?"),
    ("", "Læs mere nedenfor.\n- Mandag: udslæt på armene efter penicillin\n- Tirsdag: hævede læber\nHvad gør vi?"),
]
# A report about a person the sender looks after ('Mr Hill', 'she', 'Fru Hansen', 'beboeren'), a question put to
# the pharmacy next to a health word, a plea for advice and a terse 'Pregnant, 8 weeks' are the sender's own
# business, however much the mail looks like a digest (a masthead with a week, an unsubscribe line).
PERSON_REPORTS = [
    ("", "Weekly update from Rosewood care home - week 47\n* Mr Hill: fell twice since the doctor started "
     "doxazosin\n* Mrs Lee: nausea and dizziness since the new amlodipine\nRead more in the attached log."),
    ("", "Kort nyt fra Bolig 3 - uge 47\n- Hr. Jensen: faldet to gange siden lægen startede ham på Doxazosin\n"
     "- Fru Hansen: kvalme og svimmelhed siden den nye Amlodipin\nLæs mere i vedhæftede."),
    ("Weekly update", "Rosewood care home newsletter - week 47\n* Mr. Hill: fell twice since the doctor started "
     "doxazosin\n* Mrs. Lee: nausea since the new amlodipine\nRead more in the attached log. Unsubscribe"),
    ("Nyhedsbrev fra Bolig 3", "Nyhedsbrev - uge 47\n- Beboeren i stue 4: kvalme siden den nye Amlodipin\n"
     "Afmeld nyhedsbrev"),
    ("", "Also this week she fell twice since the new blood pressure pills were started. Read more in the attached "
     "notes from the care home. Unsubscribe"),
    ("", "Saw this in the newsletter: 'Valproate: new reminder on pregnancy prevention. Read more.' Pregnant on "
     "Epilim - should it be stopped?"),
    ("Nyhedsbrev", "I jeres nyhedsbrev: Valproat og graviditet. Gravid på Orfiril - skal den stoppes? Afmeld "
     "nyhedsbrev"),
    ("Pharma Today", "Pregnant, 8 weeks, still on Depakine.\n\nPHARMA TODAY - week 47\nValproate: new reminder. "
     "Unsubscribe | Manage preferences"),
    ("Nyhedsbrev", "Gravid i uge 8 og tager stadig Depakine.\n\nNYHEDSBREV - uge 47\nValproat: ny påmindelse. "
     "Afmeld nyhedsbrev"),
    ("Newsletter", "Your newsletter: Valproate and pregnancy. Unsubscribe.\n- Monday: rash on arms after "
     "amoxicillin\n- Tuesday: lips swollen, hard to swallow\nWhat should we do?"),
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


@pytest.mark.parametrize(("subject", "body"), PERSON_REPORTS)
def test_a_report_about_a_person_or_a_question_to_the_pharmacy_is_never_gated(subject, body):
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
