"""The bottom layer: errors, strict API input, masking of personal data, safe CSV, shared
helpers. Every app may import it; it imports no app (an import-linter contract holds that)."""
