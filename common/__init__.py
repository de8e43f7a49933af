"""The bottom room: errors and their kinds, the HTTP status of each kind, strict API input,
page helpers (@requires), masking of personal data, the one safe CSV writer.
Imports no app (import-linter: `common`); every app may import it."""
