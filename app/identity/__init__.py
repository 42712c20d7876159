"""Identity: one user store for every Tsunagu service.

Modules: ``roles`` (the role names), ``passwords`` (Argon2), ``keys`` (RSA signing keys kept in
the database, JWKS), ``tokens`` (access-token verification, built-in or external OIDC),
``token_cache`` (verified tokens kept until expiry or revocation), ``sessions`` (login,
refresh rotation with reuse detection, logout), ``accounts`` (users),
``rate_limit`` (login throttling, in memory or Redis) and ``deps`` (the FastAPI dependencies other
routers use: ``CurrentPrincipal``, ``require_roles``, ``principal_from_token``).
"""
