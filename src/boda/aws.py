"""What every AWS API boda calls (ECR, ECS, Lambda, KMS) answers when the credentials are refused,
and where boda looks for them: one list, for every backend that speaks AWS."""

from __future__ import annotations

#: Error codes meaning the caller's credentials are missing, wrong, expired or not allowed.
DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
    }
)

#: Where the AWS default credential chain looks, for hints.
CREDENTIAL_SOURCES = (
    "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, SSO, or an instance/task role"
)
