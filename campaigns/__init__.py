"""Activation: plays (plays/: a segment, a department's tactic, a KPI), campaigns with holdouts
and their sending, in-app messages, webhooks and ad audiences.
Imports segments and everything below (import-linter: `layers`); only demo sits above."""
