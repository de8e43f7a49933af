"""The campaign pages (editor, detail, results, webhooks) and, in `public`, the endpoint
the tenant's own product calls for in-app messages."""
