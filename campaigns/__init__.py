"""Activation: plays (plays/: a segment, a department's tactic, a KPI), campaigns with holdouts
and their sending, in-app messages, webhooks and ad audiences; the STP board, the review cycle
and the maturity practices, which read them.
Imports insights, segments and everything below (import-linter: `layers`); only demo sits above."""
