"""The segment rule language (shared/specs/segment-rules.md, version 1). Pure: no queries,
no tenant, no clock, no Django — whatever the rules need from the world is passed in; it
imports only the standard library and common.errors (an import-linter contract).

    vocabulary                                   trait types, built-in traits, operators, measures, limits
    parse(doc, registry) -> (Group, warnings)     raises RuleError with every problem
    compile_rule(group, now=, refs=) -> Sql      one parameterised statement of customer ids (shapes: which form)
    reference.evaluate(group, facts, now=)       the plain-Python oracle the SQL is tested against
    explain(group, facts, now=)                  the tree with each node's truth and deciding facts

Where the contract leaves storage open, this implementation settles it so (and the README
says so):
- A built-in trait's column is NULL when the trait is missing (never sent, or cleared with
  null); "" and [] a client sent are present, everywhere, as the contract's "Clarified"
  section says (an empty CSV cell is "not provided" and changes nothing).
- `rfm_segment` and `cluster` of CustomerMetrics store "" when unscored: missing.
- Survey `count` counts every response; `latest` and `average` read those with a score.
"""

from segments.rules.nodes import Group, RuleError  # noqa: F401
