"""Who is asking: HTTP basic (bcrypt users file) and OIDC bearer tokens, the admin role, and the ASGI middleware
that guards every non-public route. See docs/auth.md."""
