"""Workflows: DAG planning (pure), storage, the engine that advances them, and their Lua."""
