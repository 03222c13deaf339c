"""Recurring schedules: specs, storage, firing."""
