from tests.helpers import auth, register

async def test_smoke(users_client, recorder):
    c = users_client
    body = await register(c, email="Alice@Example.com ", name="Alice Smith")
    print(body)
    r = await c.get("/api/v1/auth/me", headers=auth(body["access_token"]))
    print(r.status, await r.text())
    r = await c.post("/api/v1/auth/login", json={"email": "alice@example.com", "password": "correct horse battery"})
    print(r.status, await r.text())
    r = await c.get("/api/v1/users?q=ali", headers=auth(body["access_token"]))
    print(r.status, await r.text())
    r = await c.patch("/api/v1/profiles/me", json={"height_cm": 170, "goals": ["strength"]}, headers=auth(body["access_token"]))
    print(r.status, await r.text())
    print(await recorder.wait_for("profile.updated"))
    r = await c.get("/api/v1/openapi.json")
    import json
    from openapi_spec_validator import validate
    validate(await r.json())
