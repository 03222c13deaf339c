"""The coordinator: accepts tasks, schedules them onto agents, applies their results."""
