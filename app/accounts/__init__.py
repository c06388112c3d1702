"""Accounts: users linked to persons, role grants on grid nodes, tokens, audit, login throttle."""
