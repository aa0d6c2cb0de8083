"""Access-control and identity types shared by every domain."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.utils.str_converters import to_camel_case

from repository.errors import ValidationError
from repository.models import AccessControl as AccessControlModel
from repository.models import AccessVisibility

from .enums import described_enum

described_enum(AccessVisibility, "Who may see an object besides the listed users.", {
    "PRIVATE": "Only the users listed in the access control (and admins by role).",
    "PUBLIC": "Everyone may read it, anonymous callers included; writing still needs a list.",
})


@strawberry.type(description="Who may read, write and administer an object.")
class AccessControl:
    visibility: AccessVisibility = strawberry.field(
        description="PUBLIC objects are readable by everyone, anonymous callers included.")
    read_access: list[str] = strawberry.field(description="Users who may read.")
    write_access: list[str] = strawberry.field(
        description="Users who may read and drive the lifecycle.")
    admin_access: list[str] = strawberry.field(
        description="Users who may also delete and change access control.")


@strawberry.input(description="A complete access-control setting; it replaces the old one.")
class AccessControlInput:
    visibility: AccessVisibility = strawberry.field(
        default=AccessVisibility.PRIVATE, description="PRIVATE or PUBLIC.")
    read_access: list[str] = strawberry.field(default_factory=list, description="Readers.")
    write_access: list[str] = strawberry.field(default_factory=list, description="Writers.")
    admin_access: list[str] = strawberry.field(default_factory=list, description="Admins.")

    def to_model(self) -> AccessControlModel:
        try:
            return AccessControlModel(self.visibility, list(self.read_access),
                                      list(self.write_access), list(self.admin_access))
        except ValidationError as exc:
            # name the argument as the client wrote it: accessControl.readAccess
            field = to_camel_case(exc.field)
            raise ValidationError(f"accessControl.{field}",
                                  exc.message.removeprefix(f"{exc.field}: ")) from None


AccessArg = Annotated[AccessControlInput, strawberry.argument(
    description="The new access control; it replaces the old one entirely.")]


def access_or_none(value: AccessControlInput | None) -> AccessControlModel | None:
    return None if value is None else value.to_model()


@strawberry.type(description="Who the server thinks the caller is.")
class Viewer:
    user_id: str | None = strawberry.field(description="The token's subject; null if anonymous.")
    roles: list[str] = strawberry.field(description="Roles granted by the token.")
    anonymous: bool = strawberry.field(description="True when no token was sent.")
