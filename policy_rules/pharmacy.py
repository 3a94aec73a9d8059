"""Schema and loader for pharmacy.yaml: the pharmacy's own facts, quoted in replies as source kind "policy"."""

import re
from datetime import date, time
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from policy_rules.yaml_errors import load_model

DEFAULT_PATH = Path(__file__).with_name("pharmacy.yaml")
SOURCE_REF = "pharmacy.yaml"
_DRUG_NAME = re.compile(r"^[\w\- /]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Localised(_Strict):
    """A text in both reply languages."""

    en: str = Field(min_length=1)
    da: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.da if language == "da" else self.en


class Hours(_Strict):
    open: time
    close: time

    @model_validator(mode="after")
    def _ordered(self) -> "Hours":
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class OpeningHours(_Strict):
    weekdays: Hours
    saturday: Hours | None
    sunday: Hours | None


class Contact(_Strict):
    name: Localised
    phone: str


class Emergency(_Strict):
    emergency_number: str
    out_of_hours_doctor: Contact
    poison_helpline: Contact


class Pickup(_Strict):
    """When an order is ready: same weekday if ordered before the cut-off, else the next weekday."""

    order_cutoff: time
    ready_from: time
    short_day_cutoff: time
    short_day_ready_from: time
    out_of_stock_extra_weekdays: int = Field(ge=0, le=10)
    hold_days: int = Field(ge=1, le=60, description="Days ready medicine is kept at the counter.")


class Complaints(_Strict):
    acknowledge_within_working_days: int = Field(ge=1)
    answer_within_working_days: int = Field(ge=1)
    authority: Localised
    authority_url: str


class RefillThresholds(_Strict):
    """Share of the last dispense's days' supply that must have elapsed before a refill."""

    default: float = Field(gt=0, le=1)
    controlled: float = Field(gt=0, le=1)
    payers: dict[str, float] = Field(default_factory=dict)

    @field_validator("payers")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not 0 < v <= 1]
        if bad:
            raise ValueError(f"thresholds must be in (0, 1]: {', '.join(bad)}")
        return value


class PharmacyFacts(_Strict):
    """Everything about the pharmacy itself that a reply may state."""

    version: int = Field(ge=1, le=1)
    name: Localised
    address: str
    phone: str
    email: str
    website: str
    booking_url: str
    timezone: str
    opening_hours: OpeningHours
    service_hours: Localised
    email_response_working_days: int = Field(ge=1)
    booking_cancel_hours: int = Field(ge=0)
    emergency: Emergency
    pickup: Pickup
    public_holidays: list[date]
    short_days: list[date]
    complaints: Complaints
    refill_thresholds: RefillThresholds
    drug_aliases: dict[str, str] = Field(default_factory=dict, description="Brand name -> generic on file.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("drug_aliases")
    @classmethod
    def _plain_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [f"{k}: {v}" for k, v in value.items() if not (_DRUG_NAME.match(k) and _DRUG_NAME.match(v))]
        if bad:
            raise ValueError(f"drug names may hold letters, digits, '-', '/' and spaces only: {bad[0]}")
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def holidays(self) -> frozenset[date]:
        return frozenset(self.public_holidays)

    @cached_property
    def short_day_set(self) -> frozenset[date]:
        return frozenset(self.short_days)


def _span(hours: Hours | None, language: str) -> str:
    if hours is None:
        return "lukket" if language == "da" else "closed"
    return f"{hours.open:%H:%M}–{hours.close:%H:%M}"


def template_values(facts: PharmacyFacts, language: str) -> dict[str, str | int]:
    """Every pharmacy fact a template may state (template_schema.PHARMACY_FACTS), in one language."""
    return {
        "name": facts.name.get(language),
        "address": facts.address,
        "phone": facts.phone,
        "email": facts.email,
        "website": facts.website,
        "booking_url": facts.booking_url,
        "weekday_hours": _span(facts.opening_hours.weekdays, language),
        "saturday_hours": _span(facts.opening_hours.saturday, language),
        "service_hours": facts.service_hours.get(language),
        "email_response_working_days": facts.email_response_working_days,
        "booking_cancel_hours": facts.booking_cancel_hours,
        "hold_days": facts.pickup.hold_days,
        "emergency_number": facts.emergency.emergency_number,
        "out_of_hours_doctor": facts.emergency.out_of_hours_doctor.name.get(language),
        "out_of_hours_doctor_phone": facts.emergency.out_of_hours_doctor.phone,
        "poison_helpline": facts.emergency.poison_helpline.name.get(language),
        "poison_helpline_phone": facts.emergency.poison_helpline.phone,
        "complaints_ack_days": facts.complaints.acknowledge_within_working_days,
        "complaints_answer_days": facts.complaints.answer_within_working_days,
        "complaints_authority": facts.complaints.authority.get(language),
        "complaints_authority_url": facts.complaints.authority_url,
    }


def load_pharmacy(path: Path | None = None) -> PharmacyFacts:
    """Load and validate pharmacy.yaml (default: the one beside this module)."""
    return load_model(path or DEFAULT_PATH, PharmacyFacts)
