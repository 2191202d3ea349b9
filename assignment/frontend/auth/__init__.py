"""Who may call the HTTP API: access keys, SigV4 verification, and the identities behind keys.

``keys`` keeps admin access keys in the platform's database; ``sigv4`` parses and verifies a request's
signature (pure, with botocore's signer); ``resolver`` finds the identity behind a key id through a short
cache. The aiohttp middleware that applies them to every route is
:mod:`assignment.frontend.api.auth`; this package imports nothing of the HTTP layer.

Example::

    claim = read_claim(request, region="us-east-1", now=time.time())
    identity = await resolver.resolve(claim)
    check_signature(request, claim, identity.secret)
"""
