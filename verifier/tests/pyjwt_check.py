"""Checks a verifier token with PyJWT, independently of the Rust code.

usage: pyjwt_check.py JWKS_URL TOKEN — prints JSON: the verified claims, and whether a wrong
audience and a tampered payload are refused. Exits non-zero if the token does not verify.
"""
import json
import sys

import jwt

jwks_url, token = sys.argv[1], sys.argv[2]
signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, signing_key.key, algorithms=["EdDSA"], audience="anonchat")


def refused(fn):
    try:
        fn()
    except jwt.PyJWTError:
        return True
    return False


head, payload, sig = token.split(".")
other = jwt.utils.base64url_encode(json.dumps(dict(claims, gender="M" if claims["gender"] != "M" else "F")).encode()).decode()
print(json.dumps({
    "claims": claims,
    "wrong_audience_refused": refused(lambda: jwt.decode(token, signing_key.key, algorithms=["EdDSA"], audience="other")),
    "tampered_refused": refused(lambda: jwt.decode(f"{head}.{other}.{sig}", signing_key.key, algorithms=["EdDSA"], audience="anonchat")),
}))
