"""The hooks runner: runs commands and signed webhooks when events happen."""
