"""``fittracker users create-admin``: create an admin account, or promote an existing one.

The password comes from ``--password`` or, when that is left out, from the first line of
standard input (which keeps it out of the process list). It is never printed or logged.
"""

from __future__ import annotations

import argparse
import sys

from fittracker_plugins.users.models import RegisterRequest
from fittracker_plugins.users.passwords import Passwords
from fittracker_plugins.users.store import EmailTaken, UserStore
from pydantic import ValidationError

from fittracker import CliCommand, PluginContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True, help="the admin's email address")
    parser.add_argument("--password", help="the admin's password (default: read one line from stdin)")
    parser.add_argument("--name", help="display name for a new account (default: the email's local part)")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


async def create_admin(args: argparse.Namespace, ctx: PluginContext) -> int:
    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\r\n")
    email = str(args.email)
    name = args.name or email.strip().split("@", 1)[0] or "admin"
    try:
        body = RegisterRequest(email=email, password=password, name=name)
    except ValidationError as exc:
        fields = ", ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return _fail(f"invalid input ({fields})")
    min_length = int(ctx.settings["password_min_length"])
    if len(body.password) < min_length:
        return _fail(f"password: at least {min_length} characters are required")

    store = UserStore(ctx.db)
    await store.create_indexes()
    passwords = Passwords.from_settings(ctx.settings)
    password_hash = await passwords.hash(body.password)
    existing = await store.by_email(body.email)
    if existing is not None:
        await store.set_password_hash(existing["_id"], password_hash)
        await store.set_role(existing["_id"], "admin")
        ctx.log.info("account promoted to admin", extra={"user_id": existing["_id"]})
        print(existing["_id"])
        return 0
    try:
        doc = await store.create_user(
            email=body.email, name=body.name, password_hash=password_hash, role="admin"
        )
    except EmailTaken:
        return _fail("the account was created concurrently; run the command again to promote it")
    await ctx.publish(
        "user.registered",
        {"user_id": doc["_id"], "email": doc["email"], "name": doc["name"]},
        subject=doc["_id"],
    )
    ctx.log.info("admin account created", extra={"user_id": doc["_id"]})
    print(doc["_id"])
    return 0


COMMANDS = (
    CliCommand(
        words=("users", "create-admin"),
        help="create an admin account (or make an existing account admin and reset its password)",
        configure=configure,
        run=create_admin,
    ),
)
