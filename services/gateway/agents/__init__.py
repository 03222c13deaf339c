"""AgentService: agents over one gRPC stream each; the gateway reads their inboxes and stores
their reports (docs/agents.md)."""
