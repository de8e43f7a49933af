"""Reads of segments (house rule 2), by the question they answer: rules (rule_context and
the registry), members, preview, hygiene, directory (and the builder's catalogue), facts
(for the reference evaluator and explain), versions. Nothing here writes memberships."""
