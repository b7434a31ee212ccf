"""boda: build once, deploy anywhere.

Map of the package (each layer imports only those below it):

    boda.cli, boda.web        parse, call one service, render
    boda.services             build, evidence, promote, rollback, status, gc
    boda.policy               ECR lifecycle semantics, protections, expiry plan (pure)
    boda.registry             one Registry protocol: oci (HTTP), layout (disk), ecr; copy by digest
    boda.ledger               builds, promotions, evidence and events on SQLite or PostgreSQL
    boda.types, boda.errors, boda.config   value types, the error tree, settings
"""

__version__ = "0.1.0"
