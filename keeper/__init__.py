"""keeper: the operator service (order intake, clearing engine, settlement, relaying, reports)."""
