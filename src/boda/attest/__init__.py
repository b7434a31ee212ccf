"""Signed evidence and promotion attestations that travel with the image.

Layers, innermost first (every format is a published one; boda only defines two predicates):

    predicate   statement.py  what is claimed: the in-toto `test-result` predicate for tests, boda's
                              `signoff` / `evidence` predicates for other kinds, boda's `promotion`
    statement   statement.py  in-toto Statement v1: the image digest (subject) and the predicate
    envelope    dsse.py       DSSE v1: the statement's bytes, `application/vnd.in-toto+json`, and
                              signatures over the pre-authentication encoding (PAE)
    keys        keys.py       Ed25519 and ECDSA P-256 PEM keys, AWS KMS asymmetric keys (`kms:ID`)
    artifact    artifact.py   the OCI 1.1 artifact manifest that attaches an envelope to the image
                              as a referrer (`subject` = the image)

This package does no registry or ledger I/O: `boda.services.attest` writes and reads artifacts.
"""
