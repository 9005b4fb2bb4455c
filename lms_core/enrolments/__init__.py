"""Enrolment: self-enrolment and assigned training (调训)."""
