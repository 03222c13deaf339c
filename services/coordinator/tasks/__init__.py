"""Tasks: storage, scheduling onto agents, results, reclaim, dead letters, and their Lua."""
