"""Authentication: API tokens and their store, the method/role table, the server interceptor,
service-to-service credentials and the audit of denied calls (docs/security.md, Tokens and
roles)."""
