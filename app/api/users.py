"""Users: one's own profile, reading another user (self or admin), admin role management."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlmodel import col, func, select

from app.api.auth import Locale, UserOut
from app.api.schemas import AUTHED, error_responses
from app.db import SessionDep
from app.dispatch.console import phone_digits
from app.errors import ApiError
from app.identity.accounts import check_roles
from app.identity.deps import CurrentPrincipal, Principal, require_roles
from app.identity.roles import Role
from app.models.identity import User
from app.models.request_model import RequestModel
from app.services import ServicesDep

router = APIRouter(prefix="/users", tags=["users"], responses=AUTHED | error_responses(413))

AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN.value))]


class ProfileIn(RequestModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: Locale | None = None
    phone: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^\+?[0-9][0-9 ()-]{5,30}$",
        description="Telephone (a dispatcher finds a resident who books by phone).",
    )


class RolesIn(RequestModel):
    roles: list[str] = Field(min_length=1, max_length=len(Role))


class AdminUserIn(RequestModel):
    disabled: bool | None = None
    company_id: uuid.UUID | None = None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int


def _get_user(db: SessionDep, user_id: uuid.UUID) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise ApiError(404, "user_not_found", "No such user.", {"id": str(user_id)})
    return user


def _principal_user_id(principal: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal.user_id)
    except ValueError:  # an external issuer's subject that is not a UUID
        return None


@router.get("/me")
def me(principal: CurrentPrincipal, db: SessionDep) -> UserOut:
    """The signed-in user's profile."""
    uid = _principal_user_id(principal)
    user = db.get(User, uid) if uid else None
    if user is None:
        # Signed in through an external issuer without a local account: show the token's view.
        return UserOut(
            id=principal.user_id,
            email=principal.email,
            display_name=principal.email or principal.user_id,
            locale="ja",
            roles=sorted(principal.roles),
        )
    return UserOut.of(user)


@router.patch("/me", responses=error_responses(404))
def update_me(body: ProfileIn, principal: CurrentPrincipal, db: SessionDep) -> UserOut:
    """Change one's display name or locale."""
    uid = _principal_user_id(principal)
    if uid is None:
        raise ApiError(404, "user_not_found", "This identity has no local profile.")
    user = _get_user(db, uid)
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.locale is not None:
        user.locale = body.locale
    if body.phone is not None:
        user.phone = phone_digits(body.phone)
    db.add(user)
    db.commit()
    return UserOut.of(user)


@router.get("")
def list_users(
    _: AdminPrincipal,
    db: SessionDep,
    role: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UserPage:
    """Every user, oldest first (admin only); ``role`` filters on one role."""
    users = list(db.exec(select(User).order_by(col(User.created_at), col(User.id))).all())
    if role is not None:
        check_roles([role])
        users = [u for u in users if role in u.roles]
    total = (
        len(users) if role is not None else db.exec(select(func.count()).select_from(User)).one()
    )
    return UserPage(items=[UserOut.of(u) for u in users[offset : offset + limit]], total=total)


@router.get("/{user_id}", responses=error_responses(404))
def get_user(user_id: uuid.UUID, principal: CurrentPrincipal, db: SessionDep) -> UserOut:
    """A user's profile: one's own, or anyone's for an admin (403 otherwise)."""
    if str(user_id) != principal.user_id and not principal.is_admin:
        raise ApiError(403, "forbidden", "You may only read your own account.")
    return UserOut.of(_get_user(db, user_id))


@router.patch("/{user_id}/roles", responses=error_responses(404, 409))
def set_roles(
    user_id: uuid.UUID, body: RolesIn, principal: AdminPrincipal, db: SessionDep
) -> UserOut:
    """Replace a user's roles (admin only). The last admin cannot lose the admin role."""
    user = _get_user(db, user_id)
    roles = check_roles(body.roles)
    if Role.ADMIN.value in user.roles and Role.ADMIN.value not in roles:
        _refuse_if_last_admin(db, user)
    user.roles = roles
    db.add(user)
    db.commit()
    return UserOut.of(user)


@router.patch("/{user_id}", responses=error_responses(404, 409))
def admin_update_user(
    user_id: uuid.UUID,
    body: AdminUserIn,
    principal: AdminPrincipal,
    services: ServicesDep,
    db: SessionDep,
) -> UserOut:
    """Disable/enable a user or set their company (admin only). Disabling ends their sessions."""
    user = _get_user(db, user_id)
    if "company_id" in body.model_fields_set:
        user.company_id = body.company_id
    if body.disabled is not None and body.disabled != user.disabled:
        if body.disabled and Role.ADMIN.value in user.roles:
            _refuse_if_last_admin(db, user)
        user.disabled = body.disabled
        if body.disabled:
            services.identity.sessions.revoke_all(db, user.id, "disabled")
    db.add(user)
    db.commit()
    return UserOut.of(user)


def _refuse_if_last_admin(db: SessionDep, user: User) -> None:
    admins = [
        u
        for u in db.exec(select(User).where(col(User.disabled).is_(False))).all()
        if Role.ADMIN.value in u.roles
    ]
    if [u.id for u in admins] == [user.id]:
        raise ApiError(409, "last_admin", "This is the last admin; appoint another one first.")
