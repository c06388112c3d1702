"""The dependencies a route declares, as type aliases.

- `SessionDep`: the request's database connection (app.db.session), taken from the
  pool when first needed and given back before the response is sent;
- `SettingsDep`: the app's settings;
- `CallerDep` / `AdminDep`: the logged-in caller (app.policy), any account or an admin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app import policy
from app.accounts.scope import Principal
from app.db import session
from app.settings import Settings
from grid.db import Conn


async def settings_of(request: Request) -> Settings:
    # async, so FastAPI calls it in the event loop: a plain function costs a thread hand-off.
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Conn, Depends(session, scope="function")]
SettingsDep = Annotated[Settings, Depends(settings_of)]
CallerDep = Annotated[Principal, Depends(policy.logged_in)]
AdminDep = Annotated[Principal, Depends(policy.admin)]
