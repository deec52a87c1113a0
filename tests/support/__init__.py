"""Shared test support: builders (federations, DAOs, contract fixtures), real services (js-ipfs nodes, Postgres,
the backend over HTTP), chain-clock helpers and the rule for services that are missing.

Tests import it as ``tests.support.<module>``; no test imports another test module and nothing edits sys.path."""
