"""The customer pages: the workspace home, the directory and profiles, metrics, the trait
registry's settings page, and the /v1/ tracking endpoints."""
