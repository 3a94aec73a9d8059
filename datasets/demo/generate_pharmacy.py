"""Writes datasets/demo/pharmacy.json: the fictional Søndergade Apotek's PMS data (deterministic, seeded).

Run: python datasets/demo/generate_pharmacy.py  (rewrites pharmacy.json; tests check it is current).
Every person here is invented. "Today" for the demo is 2026-11-25; dispense dates are placed relative
to it so that some refills are due, some too early and some overdue.
"""

import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from data_contracts.models import PharmacyExport

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "pharmacy.json"
TODAY = date(2026, 11, 25)
SEED = 20261125
PHARMACY = "Søndergade Apotek"


class Drug(NamedTuple):
    drug: str
    strength: str
    form: str
    directions_da: str
    directions_en: str
    quantity: int
    days_supply: int
    schedule: str | None = None
    group: str = "B"


DRUGS = {
    "metformin": Drug("Metformin Sandoz", "500 mg", "tablet", "1 tablet 2 gange dagligt til måltid",
                      "Take 1 tablet twice daily with meals", 100, 50),
    "atorvastatin": Drug("Atorvastatin Krka", "20 mg", "tablet", "1 tablet dagligt om aftenen",
                         "Take 1 tablet daily in the evening", 100, 100),
    "simvastatin": Drug("Simvastatin Actavis", "40 mg", "tablet", "1 tablet dagligt om aftenen",
                        "Take 1 tablet daily in the evening", 100, 100),
    "losartan": Drug("Losartan Actavis", "50 mg", "tablet", "1 tablet dagligt",
                     "Take 1 tablet once daily", 98, 98),
    "amlodipin": Drug("Amlodipin Sandoz", "5 mg", "tablet", "1 tablet dagligt",
                      "Take 1 tablet once daily", 98, 98),
    "ramipril": Drug("Ramipril Actavis", "5 mg", "capsule", "1 kapsel dagligt",
                     "Take 1 capsule once daily", 100, 100),
    "bisoprolol": Drug("Bisoprolol Teva", "5 mg", "tablet", "1 tablet dagligt om morgenen",
                       "Take 1 tablet every morning", 100, 100),
    "metoprolol": Drug("Selo-Zok", "50 mg", "prolonged-release tablet", "1 depottablet dagligt",
                       "Take 1 prolonged-release tablet once daily", 100, 100),
    "furosemid": Drug("Furix", "40 mg", "tablet", "1 tablet om morgenen",
                      "Take 1 tablet in the morning", 100, 100),
    "eliquis": Drug("Eliquis", "5 mg", "tablet", "1 tablet 2 gange dagligt (morgen og aften)",
                    "Take 1 tablet twice daily (morning and evening)", 168, 84),
    "marevan": Drug("Marevan", "2,5 mg", "tablet", "Efter doseringsskema fra lægen (INR-styret)",
                    "According to the INR dosing schedule from your doctor", 100, 50),
    "allopurinol": Drug("Allopurinol Viatris", "100 mg", "tablet", "1 tablet dagligt",
                        "Take 1 tablet once daily", 100, 100),
    "eltroxin": Drug("Eltroxin", "50 mikrogram", "tablet", "1 tablet dagligt på tom mave, 30 min. før morgenmad",
                     "Take 1 tablet daily on an empty stomach, 30 minutes before breakfast", 100, 100),
    "alendronat": Drug("Alendronat Bluefish", "70 mg", "tablet",
                       "1 tablet 1 gang ugentligt, fastende med et stort glas vand",
                       "Take 1 tablet once a week, fasting, with a full glass of water", 12, 84),
    "omeprazol": Drug("Omeprazol Actavis", "20 mg", "gastro-resistant capsule", "1 kapsel dagligt før morgenmad",
                      "Take 1 capsule daily before breakfast", 56, 56),
    "pantoprazol": Drug("Pantoprazol Krka", "40 mg", "gastro-resistant tablet", "1 tablet dagligt før morgenmad",
                        "Take 1 tablet daily before breakfast", 56, 56),
    "sertralin": Drug("Sertralin Accord", "50 mg", "tablet", "1 tablet dagligt om morgenen",
                      "Take 1 tablet every morning", 98, 98),
    "escitalopram": Drug("Cipralex", "10 mg", "tablet", "1 tablet dagligt",
                         "Take 1 tablet once daily", 98, 98),
    "mirtazapin": Drug("Mirtazapin Krka", "15 mg", "tablet", "1 tablet til natten",
                       "Take 1 tablet at bedtime", 100, 100),
    "ventoline": Drug("Ventoline", "0,1 mg/dosis", "inhaler", "1-2 pust ved behov, højst 8 pust i døgnet",
                      "1-2 puffs when needed, no more than 8 puffs in 24 hours", 1, 30),
    "flixotide": Drug("Flixotide", "50 mikrogram/dosis", "inhaler", "2 pust morgen og aften, skyl munden bagefter",
                      "2 puffs morning and evening, rinse your mouth afterwards", 1, 30),
    "symbicort": Drug("Symbicort Turbuhaler", "160/4,5 mikrogram/dosis", "inhaler", "2 inhalationer morgen og aften",
                      "Inhale 2 doses morning and evening", 1, 30),
    "latanoprost": Drug("Xalatan", "50 mikrogram/ml", "eye drops", "1 dråbe i hvert øje om aftenen",
                        "1 drop in each eye in the evening", 1, 30),
    "novorapid": Drug("NovoRapid FlexPen", "100 E/ml", "injection pen", "Efter skema til hovedmåltiderne",
                      "According to your schedule at main meals", 5, 50),
    "tresiba": Drug("Tresiba FlexTouch", "100 E/ml", "injection pen", "20 enheder under huden 1 gang dagligt",
                    "Inject 20 units under the skin once daily", 5, 75),
    "ozempic_05": Drug("Ozempic", "0,5 mg", "injection pen", "0,5 mg under huden 1 gang ugentligt",
                       "Inject 0.5 mg under the skin once a week", 1, 28),
    "ozempic_1": Drug("Ozempic", "1 mg", "injection pen", "1 mg under huden 1 gang ugentligt",
                      "Inject 1 mg under the skin once a week", 1, 28),
    "estradot": Drug("Estradot", "50 mikrogram/24 timer", "transdermal patch", "1 plaster skiftes 2 gange ugentligt",
                     "Change 1 patch twice a week", 24, 84),
    "prednisolon": Drug("Prednisolon DAK", "5 mg", "tablet", "1 tablet dagligt om morgenen",
                        "Take 1 tablet every morning", 100, 100),
    "movicol": Drug("Movicol", "13,8 g", "oral powder", "1 brev dagligt opløst i et glas vand",
                    "1 sachet daily dissolved in a glass of water", 30, 30, None, "HA"),
    "imadrax": Drug("Imadrax", "500 mg", "tablet", "1 tablet 3 gange dagligt i 7 dage",
                    "Take 1 tablet three times daily for 7 days", 21, 7, None, "A"),
    # Controlled medicines: Danish group A§4 for the opioids and stimulants, A for the rest.
    "contalgin": Drug("Contalgin", "10 mg", "prolonged-release tablet", "1 depottablet morgen og aften",
                      "Take 1 prolonged-release tablet morning and evening", 60, 30, "II", "A§4"),
    "oxynorm": Drug("OxyNorm", "5 mg", "capsule", "1 kapsel ved gennembrudssmerter, højst 4 kapsler i døgnet",
                    "1 capsule for breakthrough pain, no more than 4 capsules in 24 hours", 28, 14, "II", "A§4"),
    "ritalin": Drug("Ritalin", "10 mg", "tablet", "1 tablet morgen og 1 tablet middag",
                    "Take 1 tablet in the morning and 1 at midday", 60, 30, "II", "A§4"),
    "tramadol": Drug("Tramadol Actavis", "50 mg", "capsule", "1 kapsel 3 gange dagligt",
                     "Take 1 capsule three times daily", 90, 30, "IV", "A"),
    "imovane": Drug("Imovane", "7,5 mg", "tablet", "1 tablet til natten ved behov",
                    "Take 1 tablet at bedtime when needed", 30, 30, "IV", "A"),
    "stesolid": Drug("Stesolid", "5 mg", "tablet", "1 tablet ved behov, højst 2 tabletter dagligt",
                     "1 tablet when needed, no more than 2 tablets a day", 25, 25, "IV", "A"),
    "lyrica": Drug("Lyrica", "75 mg", "capsule", "1 kapsel 2 gange dagligt",
                   "Take 1 capsule twice daily", 56, 28, "V", "A"),
}

PRESCRIBERS = [
    "Lægehuset Søndergade, læge Ulla Brandt",
    "Lægerne i Viby, læge Morten Juhl",
    "Lægehuset Trøjborg, læge Sanne Vestergaard",
    "Lægepraksis Frederiksbjerg, læge Ahmad Karimi",
]
SPECIALISTS = {
    "ritalin": "Psykiatrisk Klinik Aarhus, læge Kasper Holt",
    "contalgin": "Smerteklinik Aarhus, overlæge Lene Dahl",
    "oxynorm": "Smerteklinik Aarhus, overlæge Lene Dahl",
    "ozempic_1": "Diabetesklinik Aarhus, læge Helle Bach",
    "ozempic_05": "Diabetesklinik Aarhus, læge Helle Bach",
}

# (id, first, last, born, e-mail, phone, language, allergies)
PATIENTS = [
    ("pt-0001", "Mette", "Jensen", "1958-04-12", "mette.jensen@example.dk", "+45 21 43 65 01", "da", []),
    ("pt-0002", "James", "Whitfield", "1971-09-03", "james.whitfield@example.com", "+45 31 22 48 02", "en", []),
    ("pt-0003", "Lars", "Nielsen", "1985-02-20", "lars.nielsen@example.dk", "+45 22 91 37 03", "da", []),
    ("pt-0004", "Birgitte", "Pedersen", "1949-11-30", "birgitte.pedersen@example.dk", None, "da", ["penicillin"]),
    ("pt-0005", "Søren", "Christensen", "1996-06-14", "soeren.christensen@example.dk", "+45 40 18 27 05", "da", []),
    ("pt-0006", "Henrik", "Madsen", "1962-01-08", "henrik.madsen@example.dk", "+45 26 55 10 06", "da", ["kodein"]),
    ("pt-0007", "Kirsten", "Andersen", "1982-05-22", "familien.andersen@example.dk", "+45 28 70 44 07", "da", []),
    ("pt-0008", "Oscar", "Andersen", "2014-08-09", "familien.andersen@example.dk", None, "da", ["jordnødder"]),
    ("pt-0009", "Jens", "Poulsen", "1968-03-17", "jens.poulsen@example.dk", "+45 51 33 29 09", "da", []),
    ("pt-0010", "Hanne", "Larsen", "1970-12-01", "hanne.larsen@example.dk", "+45 29 64 81 10", "da", []),
    ("pt-0011", "Emily", "Carter", "1990-07-25", "emily.carter@example.com", "+45 42 17 90 11", "en", []),
    ("pt-0012", "Karen", "Sørensen", "1955-10-10", "karen.soerensen@example.dk", "+45 86 14 22 12", "da", []),
    ("pt-0013", "David", "Miller", "1979-01-30", "david.miller@example.com", "+45 53 88 01 13", "en", ["sulfonamides"]),
    ("pt-0014", "Anne", "Kristensen", "1964-09-19", "anne.kristensen@example.dk", "+45 24 39 58 14", "da", []),
    ("pt-0015", "Poul", "Eriksen", "1945-02-02", "poul.eriksen@example.dk", "+45 86 27 13 15", "da", []),
    ("pt-0016", "Grethe", "Mortensen", "1951-06-27", "grethe.mortensen@example.dk", "+45 86 11 09 16", "da",
     ["sulfonamider"]),
    ("pt-0017", "Inger", "Holm", "1940-03-05", None, "+45 86 19 44 17", "da", []),
    ("pt-0018", "Niels", "Rasmussen", "1975-08-11", "niels.rasmussen@example.dk", "+45 20 47 36 18", "da", []),
    ("pt-0019", "Camilla", "Thomsen", "1988-12-24", "camilla.thomsen@example.dk", "+45 31 75 62 19", "da", []),
    ("pt-0020", "Mads", "Johansen", "1993-04-04", "mads.johansen@example.dk", "+45 61 28 93 20", "da", []),
    ("pt-0021", "Sophie", "Clarke", "1986-03-12", "sophie.clarke@example.com", "+45 71 40 25 21", "en", ["penicillin"]),
    ("pt-0022", "Michael", "O'Brien", "1969-11-02", "michael.obrien@example.com", "+45 52 63 14 22", "en", []),
    ("pt-0023", "Ida", "Laursen", "2001-07-07", "ida.laursen@example.dk", "+45 27 84 50 23", "da", []),
    ("pt-0024", "Frederik", "Schmidt", "1958-09-09", "frederik.schmidt@example.dk", "+45 23 16 77 24", "da", []),
    ("pt-0025", "Lone", "Hansen", "1961-05-15", "lone.hansen@example.dk", "+45 86 30 58 25", "da", ["latex"]),
    ("pt-0026", "Bent", "Petersen", "1947-12-12", "bent.petersen@example.dk", None, "da", []),
    ("pt-0027", "Maja", "Kjær", "1999-02-28", "maja.kjaer@example.dk", "+45 60 12 39 27", "da", []),
    ("pt-0028", "Torben", "Møller", "1966-06-06", "torben.moeller@example.dk", "+45 40 92 15 28", "da", ["NSAID"]),
    ("pt-0029", "Rikke", "Jørgensen", "1977-10-18", "rikke.joergensen@example.dk", "+45 26 41 87 29", "da", []),
    ("pt-0030", "Anders", "Nørgaard", "1953-01-21", "anders.noergaard@example.dk", "+45 86 25 70 30", "da", []),
]


class Rx(NamedTuple):
    """A prescription to generate; "random" fields are drawn from the seeded generator."""

    # last: days before TODAY of the newest dispense (None: never dispensed); left: refills still
    # authorised; issued: days before TODAY the prescription was written.

    patient: str
    drug: str
    last: int | str | None = "random"
    left: int | str = "random"
    issued: int | str = "random"
    status: str = "active"
    in_stock: bool = True
    payer: str = "self"
    prior_auth: str | None = None


# The first block drives the demo mailbox (see mailbox_labels.jsonl); keep its numbers in step.
PRESCRIPTIONS = [
    Rx("pt-0001", "metformin", last=48, left=3),  # rx-0001 eligible
    Rx("pt-0002", "losartan", last=95, left=2),  # rx-0002 eligible
    Rx("pt-0003", "sertralin", last=20, left=3),  # rx-0003 too early
    Rx("pt-0004", "eltroxin", last=97, left=0),  # rx-0004 no refills left: renewal
    Rx("pt-0005", "ritalin", last=29, left=4, issued=200),  # rx-0005 controlled, due
    Rx("pt-0006", "contalgin", last=12, left=5, issued=160),  # rx-0006 controlled, 12 of 30 days: early
    Rx("pt-0008", "ventoline", last=29, left=3),  # rx-0007 family address, eligible
    Rx("pt-0009", "ozempic_1", last=None, left=5, issued=15, payer="enkelttilskud", prior_auth="missing"),  # rx-0008
    Rx("pt-0010", "estradot", last=83, left=2, in_stock=False),  # rx-0009 out of stock
    Rx("pt-0011", "escitalopram", last=64, left=2, issued=755, status="expired"),  # rx-0010 expired
    Rx("pt-0012", "amlodipin", last=107, left=2),  # rx-0011 overdue, eligible
    Rx("pt-0013", "symbicort", last=28, left=4),  # rx-0012 eligible
    Rx("pt-0013", "omeprazol", last=13, left=3),  # rx-0013 too early
    Rx("pt-0014", "atorvastatin", last=62, left=3, issued=72),  # rx-0014 new statin (side-effect mail)
    Rx("pt-0015", "marevan", last=30, left=4),  # rx-0015 interaction and INR mails
    Rx("pt-0016", "eliquis", last=25, left=3, issued=40),  # rx-0016 unclear-dosage mail
    Rx("pt-0021", "eltroxin", last=41, left=3),  # rx-0017 allergy mail sender
    Rx("pt-0024", "novorapid", last=40, left=4, payer="kronikertilskud"),  # rx-0018 thread about an order
    Rx("pt-0025", "latanoprost", last=26, left=2),  # rx-0019 forwarded transfer mail
    Rx("pt-0009", "ozempic_05", last=27, left=3, issued=300, status="cancelled", payer="enkelttilskud",
       prior_auth="approved"),  # rx-0020 the dose before the increase
    # The rest of the pharmacy.
    Rx("pt-0001", "atorvastatin"),
    Rx("pt-0001", "losartan"),
    Rx("pt-0001", "omeprazol", last=400, left=1, issued=780, status="expired"),
    Rx("pt-0002", "atorvastatin"),
    Rx("pt-0002", "ventoline", last=420, left=1, issued=800, status="expired"),
    Rx("pt-0003", "omeprazol"),
    Rx("pt-0004", "alendronat"),
    Rx("pt-0004", "simvastatin"),
    Rx("pt-0006", "oxynorm", last=9, left=4, issued=160),
    Rx("pt-0006", "movicol"),
    Rx("pt-0006", "pantoprazol"),
    Rx("pt-0006", "tramadol", last=190, left=2, issued=420, status="cancelled"),
    Rx("pt-0007", "omeprazol"),
    Rx("pt-0007", "eltroxin"),
    Rx("pt-0008", "flixotide"),
    Rx("pt-0009", "metformin"),
    Rx("pt-0010", "simvastatin"),
    Rx("pt-0011", "ventoline"),
    Rx("pt-0012", "simvastatin"),
    Rx("pt-0012", "furosemid"),
    Rx("pt-0014", "losartan"),
    Rx("pt-0014", "simvastatin", last=150, left=2, issued=740, status="expired"),
    Rx("pt-0015", "bisoprolol"),
    Rx("pt-0015", "furosemid"),
    Rx("pt-0016", "metoprolol"),
    Rx("pt-0016", "alendronat"),
    Rx("pt-0017", "alendronat"),
    Rx("pt-0017", "imovane"),
    Rx("pt-0018", "tramadol"),
    Rx("pt-0018", "pantoprazol"),
    Rx("pt-0019", "stesolid"),
    Rx("pt-0019", "sertralin"),
    Rx("pt-0020", "lyrica"),
    Rx("pt-0021", "ventoline"),
    Rx("pt-0022", "ramipril"),
    Rx("pt-0022", "atorvastatin"),
    Rx("pt-0022", "imadrax", last=240, left=0, issued=241),
    Rx("pt-0023", "ventoline"),
    Rx("pt-0023", "escitalopram"),
    Rx("pt-0023", "imadrax", last=55, left=0, issued=56),
    Rx("pt-0024", "tresiba", payer="kronikertilskud"),
    Rx("pt-0024", "metformin"),
    Rx("pt-0024", "atorvastatin"),
    Rx("pt-0025", "losartan"),
    Rx("pt-0026", "allopurinol"),
    Rx("pt-0026", "furosemid"),
    Rx("pt-0026", "ramipril"),
    Rx("pt-0026", "eliquis"),
    Rx("pt-0027", "escitalopram"),
    Rx("pt-0027", "mirtazapin"),
    Rx("pt-0027", "imovane"),
    Rx("pt-0028", "oxynorm", issued=150),
    Rx("pt-0028", "prednisolon"),
    Rx("pt-0028", "pantoprazol"),
    Rx("pt-0029", "eltroxin"),
    Rx("pt-0029", "sertralin"),
    Rx("pt-0029", "lyrica"),
    Rx("pt-0030", "metoprolol"),
    Rx("pt-0030", "eliquis"),
    Rx("pt-0030", "atorvastatin"),
    Rx("pt-0030", "ramipril"),
]

# (patient, channel, purpose, granted, recorded "YYYY-MM-DD HH:MM" UTC, source)
CONSENTS = [
    ("pt-0001", "email", "refill_reminder", True, "2025-03-11 09:42", "pharmacy"),
    ("pt-0001", "sms", "pickup_followup", True, "2025-03-11 09:43", "pharmacy"),
    ("pt-0002", "email", "refill_reminder", True, "2025-09-02 14:05", "web form"),
    ("pt-0005", "sms", "pickup_followup", True, "2026-05-09 11:20", "pharmacy"),
    ("pt-0007", "email", "refill_reminder", True, "2025-11-18 15:31", "pharmacy"),
    ("pt-0008", "email", "refill_reminder", True, "2025-11-18 15:32", "pharmacy"),
    ("pt-0009", "email", "marketing", True, "2025-01-20 10:00", "web form"),
    ("pt-0009", "email", "marketing", False, "2026-02-14 08:15", "e-mail"),
    ("pt-0010", "sms", "pickup_followup", True, "2026-01-07 12:48", "pharmacy"),
    ("pt-0012", "email", "refill_reminder", True, "2025-06-23 09:10", "pharmacy"),
    ("pt-0012", "email", "refill_reminder", False, "2026-10-01 10:02", "phone"),
    ("pt-0013", "email", "refill_reminder", True, "2026-04-30 16:44", "web form"),
    ("pt-0013", "email", "appointment_reminder", True, "2026-04-30 16:44", "web form"),
    ("pt-0015", "sms", "appointment_reminder", True, "2025-12-03 13:27", "pharmacy"),
    ("pt-0021", "email", "refill_reminder", True, "2026-02-19 10:55", "web form"),
    ("pt-0024", "email", "pickup_followup", True, "2026-08-12 09:05", "pharmacy"),
    ("pt-0025", "email", "refill_reminder", True, "2025-10-28 11:11", "pharmacy"),
    ("pt-0030", "sms", "refill_reminder", True, "2026-03-03 14:30", "pharmacy"),
]


def _last_dispense(rng: random.Random, days_supply: int) -> int:
    """Days since the newest dispense: mostly due or early, some overdue, never in the last 3 days."""
    kind = rng.choices(["due", "early", "overdue"], weights=[35, 45, 20])[0]
    low, high = {"due": (0.85, 0.98), "early": (0.1, 0.6), "overdue": (1.05, 1.4)}[kind]
    return max(3, round(days_supply * rng.uniform(low, high)))


def _history(rng: random.Random, newest: date, issued: date, days_supply: int) -> list[date]:
    """Dispense dates from newest back to the issue date; patients usually collect a few days early."""
    dates = [newest]
    while True:
        previous = dates[-1] - timedelta(days=days_supply - rng.randint(-2, 5))
        if previous < issued:
            return dates[::-1]
        dates.append(previous)


def build() -> dict:
    """The whole pharmacy as an import document (a plain dict, in the order the PMS exports)."""
    rng = random.Random(SEED)
    window_start = TODAY - timedelta(days=365)
    languages = {pid: lang for pid, *_, lang, _allergies in PATIENTS}
    prescriptions, dispensed = [], []
    for number, spec in enumerate(PRESCRIPTIONS, start=1):
        drug = DRUGS[spec.drug]
        rx_id = f"rx-{number:04d}"
        # Danish A§4 prescriptions are written for shorter courses; others are valid for two years.
        validity, earliest, latest = (365, 90, 330) if drug.group == "A§4" else (730, 120, 700)
        issued_ago = rng.randint(earliest, latest) if spec.issued == "random" else spec.issued
        issued = TODAY - timedelta(days=issued_ago)
        last = _last_dispense(rng, drug.days_supply) if spec.last == "random" else spec.last
        history = []
        if last is not None:
            newest = TODAY - timedelta(days=min(last, issued_ago))  # never before the prescription existed
            history = _history(rng, newest, issued, drug.days_supply)
        used = max(len(history) - 1, 0)
        left = rng.randint(1, 5) if spec.left == "random" else spec.left
        prescriptions.append({
            "prescription_id": rx_id,
            "patient_id": spec.patient,
            "drug": drug.drug,
            "strength": drug.strength,
            "form": drug.form,
            "directions": drug.directions_en if languages[spec.patient] == "en" else drug.directions_da,
            "quantity": drug.quantity,
            "days_supply": drug.days_supply,
            "refills_authorized": used + left,
            "refills_used": used,
            "issued_on": issued.isoformat(),
            "expires_on": (issued + timedelta(days=validity)).isoformat(),
            "prescriber": SPECIALISTS.get(spec.drug) or PRESCRIBERS[number % len(PRESCRIBERS)],
            "controlled_schedule": drug.schedule,
            "dk_dispensing_group": drug.group,
            "payer": spec.payer,
            "prior_auth_required": spec.prior_auth is not None,
            "prior_auth_status": spec.prior_auth,
            "in_stock": spec.in_stock,
            "status": spec.status,
        })
        dispensed.extend((when, rx_id, drug) for when in history if when >= window_start)
    dispensed.sort(key=lambda item: (item[0], item[1]))
    dispenses = [
        {"dispense_id": f"dsp-{number:05d}", "prescription_id": rx_id, "dispensed_on": when.isoformat(),
         "quantity": drug.quantity, "days_supply": drug.days_supply}
        for number, (when, rx_id, drug) in enumerate(dispensed, start=1)
    ]
    return {
        "schema_version": 1,
        "pharmacy": PHARMACY,
        "patients": [
            {"patient_id": pid, "first_name": first, "last_name": last, "date_of_birth": born, "email": email,
             "phone": phone, "preferred_language": lang, "allergies": allergies}
            for pid, first, last, born, email, phone, lang, allergies in PATIENTS
        ],
        "prescriptions": prescriptions,
        "dispenses": dispenses,
        "consents": [
            {"patient_id": pid, "channel": channel, "purpose": purpose, "granted": granted,
             "recorded_at": datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
             .isoformat().replace("+00:00", "Z"), "source": source}
            for pid, channel, purpose, granted, at, source in sorted(CONSENTS, key=lambda c: (c[0], c[4], c[1], c[2]))
        ],
    }


def render() -> str:
    """The file's exact text, validated against the contract before it is written."""
    data = build()
    PharmacyExport.model_validate(data)
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
