"""The ape adapter of the core: the chain reader, contract handles, transactions, deployment and governance over
ape. Only this subpackage imports ape; everything else in ``fedchain`` imports without it."""
