"""Triage: bilingual intent classification with escalation rules as data (rules over model)."""
