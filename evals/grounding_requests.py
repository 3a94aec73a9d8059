"""Seeded refill, order, billing, insurance and general requests against the demo PMS, as real RFC 822 bytes."""

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from core.rx_matching import drug_key

REPO = Path(__file__).resolve().parents[1]
PHARMACY_JSON = REPO / "datasets" / "demo" / "pharmacy.json"
PHARMACY_ADDRESS = Address("Søndergade Apotek", "apotek", "soendergade-apotek.example")
START = datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc)

# {drug} is how the patient names the medicine; {sign} their sign-off (name or nothing).
REFILL = {
    "en": [
        ("Refill request", "Hi,\n\nCould I please order a refill of my {drug}? I'm running low.\n\n{sign}"),
        ("{drug}", "Hello,\n\nPlease prepare my {drug} for pickup. I'll come by the counter.\n\n{sign}"),
        ("Prescription refill", "Dear pharmacy,\n\nI would like to renew my {drug}, please.\n\n{sign}"),
        ("Repeat prescription", "Hi there,\n\nCan you get my repeat prescription for {drug} ready?\n\n{sign}"),
        ("More {drug}", "Hi,\n\nI need more {drug}. I have about a week left.\n\n{sign}"),
        ("Order", "Good morning,\n\nI'd like to order {drug} again, same as last time.\n\n{sign}"),
        ("Refill", "Hello,\n\nPlease refill {drug} for me. Thank you in advance.\n\n{sign}"),
        ("Can I pick up {drug}?", "Hi,\n\nIs it possible to order my {drug} so I can pick it up?\n\n{sign}"),
        ("Running out of {drug}", "Hello,\n\nI'm almost out of my {drug}. Could you refill it?\n\n{sign}"),
        ("Medicine order", "Dear Søndergade Pharmacy,\n\nI would like a new pack of {drug}.\n\n{sign}"),
        ("Refill please", "Hi,\n\nRefill of {drug} please, whenever it suits you.\n\n{sign}"),
        ("Re: my prescription", "Hello again,\n\nI'd like to request my next supply of {drug}.\n\n{sign}"),
        ("New pack", "Hi,\n\nCould you prepare a new box of my {drug}? I'll pick it up.\n\n{sign}"),
        ("{drug} refill", "Dear team,\n\nPlease order my regular {drug} for collection.\n\n{sign}"),
        ("Reorder", "Hi,\n\nI would like to reorder {drug}. Let me know when it is ready.\n\n{sign}"),
        ("Refill request", "Hello,\n\nCan I get my {drug} refilled this week?\n\n{sign}"),
        ("For my husband", "Hi,\n\nCould you prepare {drug} for my husband? He is running low.\n\n{sign}"),
    ],
    "da": [
        ("Bestilling", "Hej\n\nJeg vil gerne bestille {drug} igen.\n\n{sign}"),
        ("{drug}", "Hej Søndergade Apotek\n\nKan I gøre min {drug} klar til afhentning?\n\n{sign}"),
        ("Recept", "Goddag\n\nJeg vil gerne have min recept på {drug} ekspederet.\n\n{sign}"),
        ("Ny pakke {drug}", "Hej\n\nMå jeg bestille en ny pakke {drug}? Jeg er ved at løbe tør.\n\n{sign}"),
        ("Bestilling af medicin", "Kære apotek\n\nJeg vil gerne bestille min faste {drug}.\n\n{sign}"),
        ("Genbestilling", "Hej\n\nJeg skal bruge mere {drug}. Jeg har til cirka en uge endnu.\n\n{sign}"),
        ("{drug} igen", "Hej\n\nKan jeg få {drug} igen? Jeg henter den i skranken.\n\n{sign}"),
        ("Afhentning", "Godmorgen\n\nVil I gøre {drug} klar, så jeg kan hente den?\n\n{sign}"),
        ("Medicin", "Hej\n\nJeg vil bede om at få min {drug} bestilt hjem.\n\n{sign}"),
        ("Bestilling", "Kære Søndergade Apotek\n\nJeg vil gerne have en ny æske {drug}.\n\n{sign}"),
        ("Recept på {drug}", "Hej\n\nJeg er snart løbet tør for {drug}. Kan I bestille den?\n\n{sign}"),
        ("Ny bestilling", "Hej igen\n\nJeg vil gerne have næste portion {drug}.\n\n{sign}"),
        ("{drug}", "Hej\n\nBestil venligst {drug} til mig. På forhånd tak.\n\n{sign}"),
        ("Genbestilling af {drug}", "Hej\n\nKan I ekspedere min recept på {drug} denne uge?\n\n{sign}"),
        ("Bestilling", "Hejsa\n\nJeg vil gerne genbestille {drug}. Giv besked når den er klar.\n\n{sign}"),
        ("Min medicin", "Hej\n\nKan jeg bestille {drug} til afhentning?\n\n{sign}"),
        ("Til min mand", "Hej\n\nKan I gøre {drug} klar til min mand? Han er ved at løbe tør.\n\n{sign}"),
    ],
}
TOPICS = {
    "order_status": {
        "en": [("My order", "Hi,\n\nIs my order ready for pickup yet?"),
               ("Order status", "Hello,\n\nI ordered medicine on Monday. Has it arrived at the pharmacy?"),
               ("Where is my parcel?", "Hi,\n\nMy home delivery has not arrived. Where is it?"),
               ("Pickup", "Hello,\n\nCan you tell me whether my order is ready to collect?"),
               ("Delivery status", "Hi,\n\nWhen will my order be delivered?"),
               ("Order", "Dear pharmacy,\n\nI am waiting for my order. What is the status?")],
        "da": [("Min bestilling", "Hej\n\nEr min bestilling klar til afhentning?"),
               ("Status på ordre", "Hej\n\nJeg bestilte medicin i mandags. Er den kommet hjem?"),
               ("Levering", "Hej\n\nMin pakke er ikke kommet. Hvor er den?"),
               ("Afhentning", "Goddag\n\nKan I fortælle mig, om min ordre er klar?"),
               ("Hvornår kommer min medicin?", "Hej\n\nHvornår bliver min bestilling leveret?"),
               ("Bestilling", "Kære apotek\n\nJeg venter på min ordre. Hvordan går det med den?")],
    },
    "billing": {
        "en": [("Invoice", "Hi,\n\nCan I get an invoice for my last purchase?"),
               ("Charged twice", "Hello,\n\nI think I was charged twice for my medicine. Can you check?"),
               ("Payment", "Hi,\n\nWhich payment methods do you accept? Can I pay with MobilePay?"),
               ("Receipt", "Hello,\n\nI lost my receipt. Can you send me a copy?"),
               ("Refund", "Hi,\n\nHow do I get a refund for a product I returned?"),
               ("Company invoice", "Dear pharmacy,\n\nCan our company pay by invoice for first aid supplies?")],
        "da": [("Faktura", "Hej\n\nKan jeg få en faktura på mit sidste køb?"),
               ("Betalt to gange", "Hej\n\nJeg tror, jeg er blevet trukket to gange for min medicin."),
               ("Betaling", "Hej\n\nHvilke betalingsformer tager I imod? Kan jeg betale med MobilePay?"),
               ("Kvittering", "Goddag\n\nJeg har mistet min kvittering. Kan I sende en kopi?"),
               ("Refusion", "Hej\n\nHvordan får jeg pengene tilbage for en vare, jeg har returneret?"),
               ("Kredit", "Hej\n\nKan jeg få medicinen på kredit og betale senere?")],
    },
    "insurance": {
        "en": [("Insurance", "Hi,\n\nDo you deduct the Danmark health insurance subsidy at the counter?"),
               ("Subsidy", "Hello,\n\nHow does the medicine subsidy (tilskud) work at your pharmacy?"),
               ("Health insurance", "Hi,\n\nI am a member of Sygeforsikringen danmark. Do I get a discount?"),
               ("Itemised receipt", "Hello,\n\nMy insurer wants an itemised receipt. Can you provide one?"),
               ("Reimbursement", "Hi,\n\nCan I get reimbursed by my insurance for vaccines?")],
        "da": [("Sygeforsikring", "Hej\n\nTrækker I tilskuddet fra sygeforsikringen danmark ved kassen?"),
               ("Tilskud", "Hej\n\nHvordan fungerer medicintilskud hos jer?"),
               ("Medlemskort", "Goddag\n\nJeg er medlem af Sygeforsikringen danmark. Får jeg rabat?"),
               ("Specificeret kvittering", "Hej\n\nMit forsikringsselskab vil have en specificeret kvittering."),
               ("Forsikring", "Hej\n\nKan jeg få tilskud fra min forsikring til vacciner?")],
    },
    "general": {
        "en": [("Opening hours", "Hi,\n\nWhat are your opening hours on Saturday?"),
               ("Christmas", "Hello,\n\nAre you open on Christmas Eve?"),
               ("Parking", "Hi,\n\nIs there parking near the pharmacy?"),
               ("Home delivery", "Hello,\n\nDo you deliver medicine to my home, and what does it cost?"),
               ("Flu vaccine", "Hi,\n\nHow much does the flu vaccine cost at your pharmacy?"),
               ("Covid vaccine price", "Hello,\n\nWhat is the price of a covid vaccination?"),
               ("Travel vaccines", "Hi,\n\nWhat do travel vaccines like hepatitis A cost?"),
               ("Address", "Hello,\n\nWhat is your address? I have not been to the pharmacy before."),
               ("Blood pressure", "Hi,\n\nCan I have my blood pressure measured, and what does it cost?"),
               ("Sunday", "Hello,\n\nAre you open on Sundays?"),
               ("Medicine review", "Hi,\n\nDo you offer a medicine review with a pharmacist?"),
               ("Wheelchair", "Hello,\n\nIs the pharmacy accessible with a wheelchair?")],
        "da": [("Åbningstider", "Hej\n\nHvornår har I åbent om lørdagen?"),
               ("Juleaften", "Hej\n\nHar I åbent juleaften?"),
               ("Parkering", "Hej\n\nKan man parkere i nærheden af apoteket?"),
               ("Levering", "Hej\n\nKan I bringe medicin ud til mig, og hvad koster det?"),
               ("Influenzavaccine", "Hej\n\nHvad koster influenzavaccinen hos jer?"),
               ("Covid-vaccine", "Goddag\n\nHvad er prisen for en covid-vaccination?"),
               ("Rejsevacciner", "Hej\n\nHvad koster rejsevacciner som hepatitis A?"),
               ("Adresse", "Hej\n\nHvad er jeres adresse? Jeg har ikke været hos jer før."),
               ("Blodtryk", "Hej\n\nKan jeg få målt mit blodtryk, og hvad koster det?"),
               ("Søndag", "Hej\n\nHar I åbent om søndagen?"),
               ("Medicinsamtale", "Hej\n\nTilbyder I medicinsamtale med en farmaceut?"),
               ("Kørestol", "Hej\n\nKan man komme ind på apoteket i kørestol?")],
    },
}
CLOSING = {"en": ("Best regards", "Thanks", "Kind regards", "Regards"),
           "da": ("Venlig hilsen", "Mvh", "Mange hilsner", "Hilsen")}
STRANGERS = [("Peter", "Holm", "en"), ("Sara", "Lund", "da"), ("Tom", "Baker", "en"), ("Ulla", "Berg", "da"),
             ("Kasper", "Dahl", "da"), ("Linda", "Wood", "en"), ("Jonas", "Friis", "da"), ("Anna", "Grant", "en")]
# Shares of the generated requests, by kind.
MIX = (("refill", 0.46), ("order_status", 0.12), ("billing", 0.12), ("insurance", 0.10), ("general", 0.20))


@dataclass(frozen=True)
class Request:
    """One generated request: what it is (for the report, no PHI) and its RFC 822 bytes."""

    kind: str
    language: str
    known_sender: bool
    raw: bytes


def load_demo(path: Path = PHARMACY_JSON) -> tuple[list[dict], dict[str, list[dict]]]:
    """Patients with an address, and each patient's prescriptions, from the demo import file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    patients = [p for p in data["patients"] if p.get("email")]
    rxs: dict[str, list[dict]] = {}
    for rx in data["prescriptions"]:
        rxs.setdefault(rx["patient_id"], []).append(rx)
    return patients, rxs


def drug_names(rx: dict, aliases: dict[str, str]) -> list[str]:
    """How a patient may name a prescription: as on the label, its first word, a brand, with strength."""
    first = rx["drug"].split()[0]
    names = [rx["drug"], first, first.lower(), f"{first} {rx['strength']}"]
    key = drug_key(first)
    names += [brand for brand, generic in aliases.items() if drug_key(generic.split()[0]) == key]
    return names


def _sign(rng: random.Random, language: str, first: str, last: str) -> str:
    closing = rng.choice(CLOSING[language])
    return rng.choice([f"{closing}\n{first} {last}", f"{closing}\n{first}", f"{closing},\n{first} {last}", closing])


def _message(n: int, rng: random.Random, sender: Address, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = PHARMACY_ADDRESS
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(minutes=9 * n + rng.randint(0, 8)))
    msg["Message-ID"] = f"<grounding-{n:05d}.{rng.randrange(16**8):08x}@example.net>"
    msg.set_content(body)
    return bytes(msg)


def _refill(n: int, rng: random.Random, patients: Sequence[dict], rxs: dict[str, list[dict]],
            aliases: dict[str, str], rx: dict | None) -> Request:
    """A patient asks for one of their prescriptions (rx, or a random one), sometimes for two."""
    if rx is None:
        lang = rng.choice(("en", "da"))  # the demo has few English-speaking patients: pick the language first
        patient = rng.choice([p for p in patients if rxs.get(p["patient_id"]) and p["preferred_language"] == lang])
        rx = rng.choice(rxs[patient["patient_id"]])
    patient = next(p for p in patients if p["patient_id"] == rx["patient_id"])
    lang = patient["preferred_language"]
    own = rxs[patient["patient_id"]]
    others = [other for other in own if other is not rx]
    chosen = [rx, rng.choice(others)] if others and rng.random() < 0.15 else [rx]
    names = [rng.choice(drug_names(rx, aliases)) for rx in chosen]
    drug = names[0] if len(names) == 1 else f"{names[0]} {'and' if lang == 'en' else 'og'} {names[1]}"
    subject, body = rng.choice(REFILL[lang])
    sign = _sign(rng, lang, patient["first_name"], patient["last_name"])
    local, _, domain = patient["email"].partition("@")
    display = f"{patient['first_name']} {patient['last_name']}" if rng.random() < 0.8 else ""
    raw = _message(n, rng, Address(display, local, domain), subject.format(drug=names[0]),
                   body.format(drug=drug, sign=sign))
    return Request("refill", lang, True, raw)


def _topic(n: int, rng: random.Random, kind: str, patients: Sequence[dict]) -> Request:
    if rng.random() < 0.5:
        lang = rng.choice(("en", "da"))
        patient = rng.choice([p for p in patients if p["preferred_language"] == lang])
        first, last, lang = patient["first_name"], patient["last_name"], patient["preferred_language"]
        local, _, domain = patient["email"].partition("@")
        known = True
    else:
        first, last, lang = rng.choice(STRANGERS)
        local, domain, known = f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}", "example.net", False
    subject, body = rng.choice(TOPICS[kind][lang])
    raw = _message(n, rng, Address(f"{first} {last}", local, domain), subject,
                   f"{body}\n\n{_sign(rng, lang, first, last)}")
    return Request(kind, lang, known, raw)


def generate(count: int, seed: int, aliases: dict[str, str]) -> list[Request]:
    """count requests, the same for the same seed; kinds in the shares of MIX.

    Every other refill request takes the next prescription of a shuffled cycle through all of them (so every
    drug, strength and dispensing history is drafted for); the others pick a language first, then a patient.
    """
    rng = random.Random(seed)
    patients, rxs = load_demo()
    kinds = [kind for kind, share in MIX for _ in range(round(count * share))]
    kinds = (kinds + ["general"] * count)[:count]
    rng.shuffle(kinds)
    emailed = {p["patient_id"] for p in patients}
    cycle = [rx for pid in sorted(rxs) if pid in emailed for rx in rxs[pid]]
    rng.shuffle(cycle)
    requests, refills = [], 0
    for n, kind in enumerate(kinds):
        if kind == "refill":
            rx = cycle[(refills // 2) % len(cycle)] if refills % 2 == 0 else None
            requests.append(_refill(n, rng, patients, rxs, aliases, rx))
            refills += 1
        else:
            requests.append(_topic(n, rng, kind, patients))
    return requests
