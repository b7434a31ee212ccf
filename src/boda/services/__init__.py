"""Lifecycle services: the rules of build, evidence, promotion, rollback, status and expiry."""
