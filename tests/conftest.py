pytest_plugins = ["fixtures.registry", "fixtures.ledger", "fixtures.cli", "fixtures.moto"]
