"""`panel serve --setup` script: start the live engine with the server, not with a page.

`workbench demo` passes it, so the engine warms up and trades while nobody watches, and the
first page opened is built on an engine already running. Without it (a plain `panel serve
apps/dashboard.py`) the first session starts the engine instead.
"""

import datetime as dt

import panel as pn

from workbench.auth import redact
from workbench.auth.oauth import install_audit
from workbench.auth.web import oauth_authorize
from workbench.ops.logs import setup_logging
from workbench.settings import load_settings
from workbench.ui.shared import service

settings = load_settings()
redact.install(redact.settings_secrets(settings))
setup_logging(settings, exchange=settings.exchange)  # JSON lines under systemd or a container
if settings.auth and settings.oauth_provider:
    pn.config.authorize_callback = oauth_authorize
    install_audit(settings.oauth_provider)  # sign-ins in the audit log, like password logins
pn.state.schedule_task("workbench-live-engine", service, at=dt.datetime.now())
