"""Peer worker definitions and the peer producer; they run in the peer venv, not the project's."""
