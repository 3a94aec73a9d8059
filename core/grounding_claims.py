"""Find checkable facts in reply text (medicines, strengths, quantities, dates, times, prices, contacts)."""

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from data_contracts.models import Contract

ClaimKind = Literal["medicine", "strength", "quantity", "date", "weekday", "time", "price", "phone", "url", "email"]


class Claim(Contract):
    """One fact stated in a text, with its normalised value (what is compared) and where it is."""

    kind: ClaimKind
    text: str
    value: str
    alternatives: list[str] = []
    start: int
    end: int


MONTHS = {
    "january": 1, "januar": 1, "jan": 1, "february": 2, "februar": 2, "feb": 2, "march": 3, "marts": 3,
    "mar": 3, "april": 4, "apr": 4, "may": 5, "maj": 5, "june": 6, "juni": 6, "jun": 6, "july": 7, "juli": 7,
    "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oktober": 10,
    "oct": 10, "okt": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
WEEKDAYS = {
    "monday": 0, "mandag": 0, "tuesday": 1, "tirsdag": 1, "wednesday": 2, "onsdag": 2, "thursday": 3,
    "torsdag": 3, "friday": 4, "fredag": 4, "saturday": 5, "lørdag": 5, "sunday": 6, "søndag": 6,
}
UNITS = {  # quantity units → a class, so Danish and English spellings compare equal
    "tablet": "tablet", "tablets": "tablet", "tabletter": "tablet", "tablette": "tablet", "tabl": "tablet",
    "tbl": "tablet", "capsule": "capsule", "capsules": "capsule", "kapsel": "capsule", "kapsler": "capsule",
    "piece": "piece", "pieces": "piece", "pcs": "piece", "stk": "piece", "styk": "piece",
    "pack": "pack", "packs": "pack", "package": "pack", "packages": "pack", "pakke": "pack", "pakker": "pack",
    "pakning": "pack", "pakninger": "pack", "box": "pack", "boxes": "pack", "æske": "pack", "æsker": "pack",
    "bottle": "bottle", "bottles": "bottle", "flaske": "bottle", "flasker": "bottle",
    "dose": "dose", "doses": "dose", "dosis": "dose", "doser": "dose",
    "refill": "refill", "refills": "refill", "udlevering": "refill", "udleveringer": "refill",
    "genudlevering": "refill", "genudleveringer": "refill", "inhaler": "inhaler", "inhalers": "inhaler",
    "inhalator": "inhaler", "inhalatorer": "inhaler", "patch": "patch", "patches": "patch", "plaster": "patch",
    "plastre": "patch", "ampul": "ampoule", "ampuller": "ampoule", "ampoule": "ampoule", "ampoules": "ampoule",
    "day": "day", "days": "day", "dag": "day", "dage": "day", "døgn": "day", "hverdag": "workday",
    "hverdage": "workday", "weekday": "workday", "weekdays": "workday", "working day": "workday",
    "working days": "workday", "business day": "workday", "business days": "workday",
    "week": "week", "weeks": "week", "uge": "week", "uger": "week", "month": "month", "months": "month",
    "måned": "month", "måneder": "month", "hour": "hour", "hours": "hour", "time": "hour", "timer": "hour",
    "minute": "minute", "minutes": "minute", "minut": "minute", "minutter": "minute", "year": "year",
    "years": "year", "år": "year",
}
STRENGTH_UNITS = {"mg": "mg", "g": "g", "mcg": "mcg", "µg": "mcg", "μg": "mcg", "ug": "mcg", "mikrogram": "mcg",
                   "microgram": "mcg", "micrograms": "mcg", "ml": "ml", "ie": "IU", "iu": "IU", "i.e.": "IU",
                   "mmol": "mmol", "%": "%", "mg/ml": "mg/ml"}
CURRENCY = {"kr": "DKK", "kr.": "DKK", "kroner": "DKK", "dkk": "DKK", "usd": "USD", "$": "USD", "dollar": "USD",
             "dollars": "USD", "eur": "EUR", "€": "EUR", "euro": "EUR"}

_B = r"(?<![\w@/.:+-])"  # a claim never starts inside a word, address or path
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(WEEKDAYS)
_NUM = r"\d{1,3}(?:[.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_UNIT_RE = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
_STRENGTH_RE = r"mg/ml|mikrogram|micrograms?|mcg|µg|μg|ug|mmol|mg|ml|g|ie|iu|i\.e\.|%"
_CUR_PRE = r"kr\.?|dkk|usd|eur|\$|€"
_CUR_POST = r"kr\.?|kroner|dkk|usd|eur|dollars?|euro|\$|€"

URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+|" + _B +
                 r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:dk|com|org|net|eu|io|info|example)(?:/[^\s<>()\"']*)?",
                 re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_WD = rf"(?:(?P<wd>{_WEEKDAY_RE})(?:e|s)?,?\s+(?:(?:den|d\.|the)\s+)?)?"
DATE_ISO = re.compile(_B + _WD + r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)", re.IGNORECASE)
DATE_NUM = re.compile(_B + _WD + r"(?P<a>\d{1,2})(?P<sep>[./-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})(?![\d/])"
                      r"|" + _B + _WD.replace("wd>", "wd2>") + r"(?P<a2>\d{1,2})/(?P<b2>\d{1,2})(?![\d/])",
                      re.IGNORECASE)
DATE_DM = re.compile(_B + _WD + rf"(?P<d>\d{{1,2}})(?:\.|st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH_RE})\b\.?"
                     r"(?:,?\s+(?P<y>\d{4}))?", re.IGNORECASE)
DATE_MD = re.compile(_B + _WD + rf"(?P<mon>{_MONTH_RE})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b"
                     r"(?:,?\s+(?P<y>\d{4}))?", re.IGNORECASE)
WEEKDAY = re.compile(rf"\b(?P<wd>{_WEEKDAY_RE})(?:e|s)?\b", re.IGNORECASE)
PHONE = re.compile(
    r"(?:\+|\b00)\d{1,3}[\s.-]?(?:\d[\s.-]?){5,11}\d(?!\d)"
    r"|(?<![\d+.,/-])(?:\d{2}[ .-]?\d{2}[ .-]?\d{2}[ .-]?\d{2}|\d{4}[ -]\d{4}|\(\d{3}\)\s?\d{3}-\d{4})(?!\d|,\d)",
    re.IGNORECASE,
)
# Emergency short numbers: after a word that says so, or standing alone (not '112 tablets', '112 kr').
SHORT_PHONE = re.compile(
    r"\b(?:ringe?(?:\s+(?:til|på))?|call|dial|tlf\.?|telefon|phone|on|på)\s*:?\s*(?P<num>112|114|1813)\b"
    rf"|(?<![\w.,/+-])(?P<bare>112|114|1813)(?![\w]|[.,]\d|\s?(?:{_UNIT_RE}|{_STRENGTH_RE}|{_CUR_POST})(?!\w))",
    re.IGNORECASE,
)
PRICE = re.compile(
    rf"(?<![\w])(?P<cur1>{_CUR_PRE})\s?(?P<n1>{_NUM})(?![\d])"
    rf"|{_B}(?P<n2>{_NUM})\s?(?P<cur2>{_CUR_POST})(?![\w])"
    rf"|{_B}(?P<n3>\d{{1,3}}(?:\.\d{{3}})*|\d+),-",
    re.IGNORECASE,
)
STRENGTH = re.compile(rf"{_B}(?P<n>\d+(?:[.,]\d+)?)\s?(?P<u>{_STRENGTH_RE})(?:\s?/\s?(?P<per>ml|g|dosis|dose|h))?"
                      r"(?![\w/])", re.IGNORECASE)
TIME = re.compile(
    r"\b(?:kl\.?|klokken)\s*(?P<kh>[01]?\d|2[0-3])(?:[:.](?P<km>[0-5]\d))?"
    r"(?:\s*[-–]\s*(?P<kh2>[01]?\d|2[0-3])(?:[:.](?P<km2>[0-5]\d))?)?(?![\d:])"
    r"|\b(?P<ah>1[0-2]|0?[1-9])(?::(?P<am>[0-5]\d))?\s?(?P<ap>a\.?m\.?|p\.?m\.?)(?!\w)"
    r"|" + _B + r"(?P<h>[01]?\d|2[0-3])[:.](?P<m>[0-5]\d)(?![\d])",
    re.IGNORECASE,
)
QUANTITY = re.compile(rf"{_B}(?P<n>\d+)\s?(?:x\s?)?(?P<u>{_UNIT_RE})\b\.?", re.IGNORECASE)


def number(text: str) -> Decimal | None:
    """'1.299,50' (Danish), '1,299.50' (English), '49,00', '49' → Decimal; None when it is not a number."""
    raw = text.strip()
    if "," in raw and "." in raw:
        decimal_sep = "," if raw.rfind(",") > raw.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        raw = raw.replace(thousands, "").replace(decimal_sep, ".")
    elif "," in raw:
        head, _, tail = raw.rpartition(",")
        raw = f"{head.replace(',', '')}{'' if len(tail) == 3 else '.'}{tail}"
    elif "." in raw:
        head, _, tail = raw.rpartition(".")
        raw = f"{head.replace('.', '')}{'' if len(tail) == 3 else '.'}{tail}"
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def plain(value: Decimal) -> str:
    """Canonical text of a number: no trailing zeros, no exponent ('0.50' → '0.5', '500.0' → '500')."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def phone_value(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if digits.startswith("0045") and len(digits) == 12:
        return digits[4:]
    if text.strip().startswith("+45") and len(digits) == 10:
        return digits[2:]
    return ("+" if text.strip().startswith(("+", "00")) else "") + digits.removeprefix("00")


def url_value(text: str) -> str:
    value = text.rstrip(".,;:!?)»”'\"").casefold()
    value = re.sub(r"^(?:https?://)?(?:www\.)?", "", value)
    return value.rstrip("/")


def date_value(year: int | None, month: int, day: int) -> str | None:
    """'2026-12-03', or '--12-03' when the year is not stated; None for impossible dates."""
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: 29 February passes without a year
    except ValueError:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"--{month:02d}-{day:02d}"


def time_value(hour: str | int, minute: str | None) -> str:
    return f"{int(hour):02d}:{int(minute or 0):02d}"
