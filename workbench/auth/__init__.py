"""Users, roles, sessions, exchange keys and the audit trail (docs/security.md).

`roles` is the policy (who may do what), `accounts` logs users in and manages them, `acting`
puts the live engine behind that policy (`ActingEngine`), `keys` keeps exchange keys
encrypted, `redact` keeps secrets out of logs, and `web` plugs all of it into `panel serve`.
"""

from workbench.auth.roles import Action, NotAuthorized, Role, User, authorize

__all__ = ["Action", "NotAuthorized", "Role", "User", "authorize"]
