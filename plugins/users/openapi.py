"""The plug-in's part of ``GET /api/v1/openapi.json``: paths, schemas and tags."""

from __future__ import annotations

from typing import Any

from fittracker_plugins.users.models import (
    GOALS,
    FollowPage,
    LoginRequest,
    PageQuery,
    Profile,
    ProfileUpdate,
    PublicProfile,
    RefreshRequest,
    RegisterRequest,
    SearchQuery,
    TokenPair,
    UserAccount,
    UserSummaryPage,
)

from fittracker.openapi import BEARER, json_response, operation, query_parameters, ref, schemas

OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, *BEARER]

USER_ID: dict[str, Any] = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": "a user id (32 lower-case hex digits); anything else is a 404",
    "schema": {"type": "string"},
}

TAGS = [
    {"name": "auth", "description": "Accounts and tokens: register, log in, refresh, log out."},
    {"name": "profiles", "description": "Training profiles: your own, and other users' public ones."},
    {"name": "social", "description": "Find users by name, follow them, list followers."},
]


def _tokens(description: str) -> dict[str, Any]:
    return json_response(description, TokenPair)


def auth_paths() -> dict[str, Any]:
    return {
        "/api/v1/auth/register": {
            "post": operation(
                "users_register",
                "Create an account",
                "auth",
                {"201": _tokens("The account, with a first pair of tokens")},
                errors=(400, 409, 413, 415, 422),
                body=RegisterRequest,
                description="Emails are compared case-insensitively; an email can hold one account. "
                "Publishes `user.registered`.",
            )
        },
        "/api/v1/auth/login": {
            "post": operation(
                "users_login",
                "Log in with email and password",
                "auth",
                {"200": _tokens("A new session's tokens")},
                errors=(400, 401, 413, 415, 422, 429),
                body=LoginRequest,
                description="Repeated failures for one email (or from one client address) are refused "
                "with 429 and `Retry-After` for a while.",
            )
        },
        "/api/v1/auth/refresh": {
            "post": operation(
                "users_refresh",
                "Exchange a refresh token for new tokens",
                "auth",
                {"200": _tokens("New tokens; the presented refresh token is used up")},
                errors=(400, 401, 413, 415, 422),
                body=RefreshRequest,
                description="Refresh tokens rotate: each works once. Presenting one a second time ends "
                "its whole session.",
            )
        },
        "/api/v1/auth/logout": {
            "post": operation(
                "users_logout",
                "End the session of the presented token",
                "auth",
                {
                    "204": {
                        "description": "Logged out; the token and its session's refresh tokens are refused"
                    }
                },
                errors=(401,),
                security=BEARER,
            )
        },
        "/api/v1/auth/me": {
            "get": operation(
                "users_me",
                "The caller's account",
                "auth",
                {"200": json_response("The account", UserAccount)},
                errors=(401,),
                security=BEARER,
            )
        },
    }


def profile_paths() -> dict[str, Any]:
    either = {"anyOf": [ref(Profile), ref(PublicProfile)]}
    return {
        "/api/v1/profiles/me": {
            "get": operation(
                "users_get_my_profile",
                "The caller's profile",
                "profiles",
                {"200": json_response("The full profile", Profile)},
                errors=(401,),
                security=BEARER,
            ),
            "patch": operation(
                "users_update_my_profile",
                "Update some fields of the caller's profile",
                "profiles",
                {"200": json_response("The updated profile", Profile)},
                errors=(400, 401, 413, 415, 422),
                body=ProfileUpdate,
                security=BEARER,
                description="Only the fields sent change; unknown fields are refused. `goals` are among "
                f"{', '.join(GOALS)}; `excluded_muscles` (an injury, say) are left out of the AI's "
                "suggestions. Publishes `profile.updated` with the fields that changed "
                "and their new values.",
            ),
        },
        "/api/v1/profiles/{user_id}": {
            "get": operation(
                "users_get_profile",
                "A user's public profile",
                "profiles",
                {"200": json_response("The public profile (the full one when it is the caller's)", either)},
                errors=(401, 404),
                parameters=[USER_ID],
                security=OPTIONAL_BEARER,
                description="Works without a token. A profile that is not public is a 404 to others.",
            )
        },
    }


def social_paths() -> dict[str, Any]:
    page_params = query_parameters(PageQuery)
    return {
        "/api/v1/users": {
            "get": operation(
                "users_search",
                "Find users by name",
                "social",
                {"200": json_response("A page of users, by name", UserSummaryPage)},
                errors=(401, 422),
                parameters=query_parameters(SearchQuery),
                security=BEARER,
                description="Every word of `q` must begin a word of the name, case-insensitively "
                "(`ali` finds Alice Smith and Bob Alison). Users with a private profile are not listed.",
            )
        },
        "/api/v1/users/{user_id}/follow": {
            "post": operation(
                "users_follow",
                "Follow a user",
                "social",
                {"204": {"description": "Following (also when already following)"}},
                errors=(401, 404, 422),
                parameters=[USER_ID],
                security=BEARER,
                description="Idempotent. Following yourself is a 422. Publishes `user.followed` when new.",
            ),
            "delete": operation(
                "users_unfollow",
                "Stop following a user",
                "social",
                {"204": {"description": "Not following (also when not following before)"}},
                errors=(401, 404),
                parameters=[USER_ID],
                security=BEARER,
            ),
        },
        "/api/v1/users/{user_id}/followers": {
            "get": operation(
                "users_followers",
                "Who follows a user",
                "social",
                {"200": json_response("A page of followers, newest first", FollowPage)},
                errors=(401, 404, 422),
                parameters=[USER_ID, *page_params],
                security=BEARER,
            )
        },
        "/api/v1/users/{user_id}/following": {
            "get": operation(
                "users_following",
                "Whom a user follows",
                "social",
                {"200": json_response("A page of followed users, newest first", FollowPage)},
                errors=(401, 404, 422),
                parameters=[USER_ID, *page_params],
                security=BEARER,
            )
        },
    }


def spec() -> dict[str, Any]:
    """The partial OpenAPI document of the users plug-in."""
    components = {
        **schemas(RegisterRequest, LoginRequest, RefreshRequest, ProfileUpdate),
        **schemas(
            TokenPair, UserAccount, Profile, PublicProfile, UserSummaryPage, FollowPage, mode="serialization"
        ),
    }
    return {
        "paths": {**auth_paths(), **profile_paths(), **social_paths()},
        "components": {"schemas": components},
        "tags": TAGS,
    }
