"""Safe expiry: plan from the registry, the ledger and a lifecycle policy; apply only on request.

    inventory.py     what a repository holds: manifests, tags, push times, index children, referrers
    protections.py   what must stay: deployments, rollback windows, pins (the ledger's facts)
    policy_file.py   the lifecycle policy to plan with (the file given, or retention.policy)
    plan.py          the expiry plan of an app: every image, keep or expire, every reason
    apply.py         deleting what the plan expires, re-checked just before each deletion
    pins.py          pin and unpin
    policy_check.py  would a policy, run as ECR runs it, expire anything in use?

The plan reads everything first and any read that fails aborts it: nothing is deleted on partial
knowledge.
"""
