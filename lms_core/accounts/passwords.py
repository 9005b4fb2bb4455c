"""Password hashing and policy.

Werkzeug's scrypt (its default since 3.0) is memory-hard and salted per hash.
"""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

#: A precomputed hash, checked against when the username does not exist, so the
#: response time does not reveal which usernames are valid.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


def policy_errors(password: str, *, min_length: int, username: str = "") -> list[str]:
    """Reasons the password is too weak (empty list when acceptable)."""
    from flask_babel import gettext as _

    errors = []
    if len(password) < min_length:
        errors.append(_("Password must be at least %(n)d characters.", n=min_length))
    kinds = sum(
        [any(c.isdigit() for c in password), any(c.isalpha() for c in password), any(not c.isalnum() for c in password)]
    )
    if kinds < 2:
        errors.append(_("Password must mix letters with digits or symbols."))
    if username and username.lower() in password.lower():
        errors.append(_("Password must not contain the username."))
    return errors
