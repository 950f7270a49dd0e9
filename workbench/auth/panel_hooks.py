"""The `--auth-module` file `panel serve` loads (by path): Bokeh's auth hooks, from
`workbench.auth.web`."""

from workbench.auth.web import LOGIN_URL, LOGOUT_URL, LoginHandler, LogoutHandler, get_user

login_url = LOGIN_URL
logout_url = LOGOUT_URL

__all__ = ["LoginHandler", "LogoutHandler", "get_user", "login_url", "logout_url"]
